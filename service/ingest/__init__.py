"""Ingestion: one HL7 record in, a durable outcome out.

``consumer`` (Kafka: fetch, overlap, pause on outages) → ``pipeline`` (one transaction per
batch) over ``staging`` (the pure steps: parse, checks, rows), ``store`` (the writes),
``evaluation`` (per patient: rules → queued pages) and ``merges`` (ADT). Around them:
``messages`` (what goes in and comes out), ``fallback`` (message by message),
``dead_letter_topic`` and ``offsets`` (the consumer's copies and commits), ``replay``
(files instead of Kafka) and ``topics`` (creating and feeding topics).
"""
