"""Migration 0006 gives every existing alert its own random public id, and goes back."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import column, inspect, table, text

from alerts.dedup import dedup_key
from alerts.model import RULE_INTERACTION
from service.db.engine import make_engine
from service.db.migrate import alembic_config, upgrade
from service.db.models import Alert


def test_existing_alerts_get_distinct_random_public_ids(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    episode = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            for patient in ("P1", "P2", "P3"):
                row = Alert(
                    dedup_key=dedup_key(RULE_INTERACTION, patient, "phosphate", episode),
                    rule=RULE_INTERACTION,
                    patient_id=patient,
                    analyte="phosphate",
                    severity="high",
                    status="open",
                    observed_at=episode,
                    iron_dose_at=episode,
                    episode_start=episode,
                    antiresorptive_dose_at=episode,
                    created_at=episode,
                    updated_at=episode,
                )
                values = row.model_dump(exclude={"id", "public_id"})
                alerts = table("alerts", *(column(name) for name in values))
                connection.execute(alerts.insert().values(**values))
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT dedup_key, public_id FROM alerts")).all()
        public_ids = [public_id for _, public_id in rows]
        # One id each, 22 URL-safe characters (128 random bits), none derived from the key.
        assert len(set(public_ids)) == 3
        assert all(
            len(p) == 22 and p.replace("-", "").replace("_", "").isalnum() for p in public_ids
        )
        assert not any(public_id in key for key, public_id in rows)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0005")
        columns = {c["name"] for c in inspect(engine).get_columns("alerts")}
        assert "public_id" not in columns and "dedup_key" in columns
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM alerts")).scalar_one() == 3
    finally:
        engine.dispose()
