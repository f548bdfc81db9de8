"""Notification: the alert lifecycle, outbox, routing, dispatch, escalation, acknowledgement,
silences, history, advisories and reminders."""
