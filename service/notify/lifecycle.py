"""The one writer of alerts and their history (``Alert`` and ``AlertEvent`` rows).

Every change of an alert's state goes through a function here: opening or updating it from a
finding, resolving it (automatically or by hand), routing marks (team, silence), the
escalation state (start, advance, ack timeout, exhaustion, stops), acknowledgement, a failed
delivery, and re-keying on a patient merge. Everyone else (alerting, acknowledge, escalation,
the dispatcher, merges, the API) decides *what* happens and asks this module to write it, so
the rules for a state change and its history entry are written once.

All functions run in the caller's session and transaction, never commit, and block only on
the database (``lock_alert`` and ``resolve_manually`` wait for the alert's row lock).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from alerts.dedup import dedup_key
from alerts.escalation import Decision, Step
from alerts.model import ANALYTE_CORRECTED_CALCIUM, Finding
from service.db.models import Alert, AlertEvent

SYSTEM_ACTOR = "labsentinel"


class AlertNotFound(LookupError):
    """No alert with that id."""


def record_event(
    session: Session,
    alert_id: int,
    kind: str,
    at: datetime,
    notification_id: str = "",
    detail: Mapping[str, object] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> None:
    """Add one entry to the alert's history (``service.notify.history`` reads them)."""
    session.add(
        AlertEvent(
            alert_id=alert_id,
            kind=kind,
            at=at,
            actor=actor,
            notification_id=notification_id,
            detail=json.dumps(dict(detail or {}), sort_keys=True),
        )
    )


def lock_alert(session: Session, alert_id: int) -> Alert:
    """The alert, its row locked until the transaction ends. Raises AlertNotFound; blocks
    while another transaction holds the row."""
    row = session.execute(
        select(Alert).where(col(Alert.id) == alert_id).with_for_update()
    ).scalar_one_or_none()
    if row is None:
        raise AlertNotFound(alert_id)
    return row


def next_notification_seq(session: Session, row: Alert) -> int:
    """Count one more notification of the alert; return its sequence number (part of the
    notification id)."""
    row.notification_seq += 1
    session.add(row)
    return row.notification_seq


# -- findings and resolution ------------------------------------------------------------------


def apply_finding(
    session: Session, row: Alert | None, finding: Finding, location: str, now: datetime
) -> Alert:
    """Open (``row`` None) or update the alert of ``finding``; return it, id assigned.

    A finding older than the backfill limit when found opens a ``worklist`` alert, not an
    ``open`` one (unless the alert is already open: a worklist entry never demotes a page).
    """
    if row is None:
        # A table model does not validate on construction; _copy_finding fills the rest.
        row = Alert(dedup_key=finding.dedup_key, created_at=now)  # type: ignore[call-arg]
    _copy_finding(row, finding, location, now)
    row.status = "worklist" if finding.backfilled and row.status != "open" else "open"
    row.resolved_at = None
    session.add(row)
    session.flush()  # assigns row.id for a new alert
    return row


def resolve_automatically(session: Session, row: Alert, now: datetime) -> bool:
    """The rule no longer fires: resolve the alert. True when somebody was paged for it (an
    ``open`` alert, whose resolution is announced, and whose escalation stops); a worklist
    entry resolves quietly."""
    notified = row.status == "open"
    row.status, row.resolved_at, row.updated_at = "resolved", now, now
    if notified and row.escalation_state in ("active", "acked"):
        row.escalation_state, row.stop_reason = "stopped", "resolved"
    session.add(row)
    session.flush()
    return notified


def resolve_manually(session: Session, alert_id: int, *, actor: str, now: datetime) -> Alert:
    """Close an alert by hand (for example, a false positive after review).

    Writes the status change and a ``resolved`` history event naming ``actor``. Idempotent: an
    already resolved alert is returned unchanged and no event is written. No page goes out.
    Raises AlertNotFound; blocks while another transaction holds the alert's row.
    """
    row = lock_alert(session, alert_id)
    if row.status == "resolved":
        return row
    row.status, row.resolved_at, row.updated_at = "resolved", now, now
    session.add(row)
    record_event(session, alert_id, "resolved", now, detail={"manual": True}, actor=actor[:128])
    return row


# -- routing marks and the escalation state ----------------------------------------------------


def assign_team(session: Session, row: Alert, team: str) -> None:
    """The team the alert is routed to (an incident keeps the team it started with)."""
    row.team = team
    session.add(row)


def mark_silence(session: Session, row: Alert, silence_id: int | None) -> None:
    """The silence muting the alert's deliveries now (None: not silenced)."""
    row.silence_id = silence_id
    session.add(row)


def reset_escalation(session: Session, row: Alert) -> None:
    """A new alert (or one raised again after resolving): a fresh incident."""
    row.escalation_state, row.escalation_tier, row.escalation_round = "", 1, 0
    row.stop_reason, row.paged_at = "", None
    row.acked_at, row.acked_by, row.ack_action, row.ack_note = None, "", "", ""
    row.corrective_at, row.corrective_drug, row.delivery_failed_at = None, "", None
    session.add(row)


def start_paging(session: Session, row: Alert, now: datetime) -> None:
    """The alert pages at ``now``: start escalating (at tier 1 unless already escalating);
    a worsening restarts the timer of the current tier."""
    if row.escalation_state in ("", "exhausted"):
        row.escalation_state, row.escalation_tier, row.escalation_round = "active", 1, 0
    row.paged_at = now
    session.add(row)


def advance_escalation(session: Session, row: Alert, decision: Decision, now: datetime) -> None:
    """Take an escalation step (next tier, repeat, or re-page after an ack timed out).

    An ack that timed out is cleared first, its content kept in an ``ack-timeout`` event.
    """
    if decision.step is Step.ACK_TIMEOUT:
        record_event(
            session,
            row.id or 0,
            "ack-timeout",
            now,
            detail={
                "acked_at": row.acked_at.isoformat() if row.acked_at else None,
                "acked_by": row.acked_by,
                "action": row.ack_action,
            },
        )
        row.acked_at, row.acked_by, row.ack_action, row.ack_note = None, "", "", ""
    row.escalation_state = "active"
    row.escalation_tier, row.escalation_round = decision.tier, decision.round
    row.escalation_step = decision.number
    row.paged_at, row.updated_at = now, max(row.updated_at, now)
    session.add(row)


def exhaust_escalation(session: Session, row: Alert, now: datetime) -> None:
    """The policy ran out without an acknowledgement: stop, visibly."""
    row.escalation_state = "exhausted"
    session.add(row)
    record_event(
        session,
        row.id or 0,
        "escalation-exhausted",
        now,
        detail={"tier": row.escalation_tier, "round": row.escalation_round},
    )


def stop_for_corrective(
    session: Session, row: Alert, *, drug: str, ordered_at: datetime, now: datetime
) -> None:
    """Corrective therapy was ordered or given: escalation stops for good (the history
    event is ``record_event``'s, written by the caller with what it knows of the order)."""
    row.corrective_at, row.corrective_drug = ordered_at, drug[:64]
    if row.escalation_state in ("active", "acked"):
        row.escalation_state, row.stop_reason = "stopped", "corrective"
    session.add(row)


def acknowledge(
    session: Session, row: Alert, *, who: str, action: str, note: str, now: datetime
) -> None:
    """Record an acknowledgement on the alert; escalation sees ``acked_at`` and holds."""
    row.acked_at, row.acked_by, row.ack_action, row.ack_note = now, who, action, note
    if row.escalation_state in ("", "active"):
        row.escalation_state = "acked"
    row.updated_at = max(row.updated_at, now)
    session.add(row)


def mark_delivery_failed(
    session: Session,
    alert_id: int,
    now: datetime,
    notification_id: str,
    detail: Mapping[str, object],
) -> None:
    """A delivery of the alert failed for good: visible on the alert (the first failure's
    time) and in its history."""
    alert = session.get(Alert, alert_id)
    if alert is not None and alert.delivery_failed_at is None:
        alert.delivery_failed_at = now
        session.add(alert)
    record_event(session, alert_id, "delivery-failed", now, notification_id, detail)


# -- merges ---------------------------------------------------------------------------------------


def rekey_for_merge(session: Session, prior_id: str, surviving_id: str, now: datetime) -> None:
    """Move the prior patient's alerts to the surviving one (dedup keys hash the patient id).

    An alert the survivor already has is closed as ``merged``; the others take the
    survivor's key, so a merge neither re-pages what was already paged nor resolves it.
    """
    survivor_keys = set(
        session.execute(select(col(Alert.dedup_key)).where(col(Alert.patient_id) == surviving_id))
        .scalars()
        .all()
    )
    rows = session.execute(select(Alert).where(col(Alert.patient_id) == prior_id)).scalars()
    for row in rows:
        new_key = dedup_key(row.rule, surviving_id, row.analyte, row.episode_start)
        if new_key in survivor_keys:
            row.status, row.resolved_at = "merged", now
        else:
            row.dedup_key = new_key
            survivor_keys.add(new_key)
        row.patient_id, row.updated_at = surviving_id, now


def _copy_finding(row: Alert, finding: Finding, location: str, now: datetime) -> None:
    result = finding.result
    row.rule = finding.rule
    row.patient_id = finding.patient_id
    row.location = location[:128]
    row.analyte = "calcium" if finding.analyte == ANALYTE_CORRECTED_CALCIUM else finding.analyte
    row.severity = finding.severity.label
    row.value = result.value
    row.comparator = result.comparator
    row.unit = result.unit
    row.value_canonical = finding.value_canonical
    row.reference_range = result.reference_range
    row.observed_at = result.observed_at
    row.result_key = result.result_key
    row.iron_drug = finding.iron.drug
    row.iron_dose_at = finding.iron.start
    row.episode_start = finding.episode_start
    row.days_since_iron = finding.days_since_iron
    row.antiresorptive_drug = finding.antiresorptive.drug
    row.antiresorptive_dose_at = finding.antiresorptive.start
    row.double_trouble = finding.double_trouble
    row.backfilled = finding.backfilled
    row.updated_at = now
