"""Rows written as an older schema holds them, for the migration tests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, column, table

from alerts.dedup import dedup_key
from alerts.model import RULE_INTERACTION
from service.db.models import Alert


def insert_old_alert(connection: Connection, patient: str, at: datetime) -> None:
    """An open phosphate alert of ``patient`` at ``at``, written column by column without the
    columns later migrations add (``public_id``), as a database before them holds it."""
    row = Alert(
        dedup_key=dedup_key(RULE_INTERACTION, patient, "phosphate", at),
        rule=RULE_INTERACTION,
        patient_id=patient,
        analyte="phosphate",
        severity="high",
        status="open",
        observed_at=at,
        iron_dose_at=at,
        episode_start=at,
        antiresorptive_dose_at=at,
        created_at=at,
        updated_at=at,
    )
    values = row.model_dump(exclude={"id", "public_id"})
    alerts = table("alerts", *(column(name) for name in values))
    connection.execute(alerts.insert().values(**values))
