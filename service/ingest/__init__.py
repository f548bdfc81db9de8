"""Ingestion: the Kafka consumer, the pipeline transaction, stored results and orders,
merges, replay and topics."""
