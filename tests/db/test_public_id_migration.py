"""Migration 0006 gives every existing alert its own random public id, and goes back."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from sqlalchemy import inspect, text

from service.db.engine import make_engine
from service.db.migrate import alembic_config, upgrade
from tests.db.helpers import insert_old_alert


def test_existing_alerts_get_distinct_random_public_ids(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    episode = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    try:
        upgrade(engine, "0005")
        with engine.begin() as connection:
            for patient in ("P1", "P2", "P3"):
                insert_old_alert(connection, patient, episode)
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
