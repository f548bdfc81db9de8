"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel

import service.db.models  # noqa: F401  (registers the tables)
import service.db.prevention  # noqa: F401
from alerts.dedup import dedup_key
from alerts.model import RULE_INTERACTION
from service.db.engine import make_engine
from service.db.migrate import alembic_config, upgrade
from tests.db.helpers import insert_old_alert


def test_migrated_schema_matches_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        upgrade(engine)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert [d for d in differences if "alembic_version" not in str(d)] == []


def test_natural_keys_migration_keeps_the_rows_and_goes_back(database_url: str) -> None:
    engine = make_engine(database_url)
    config = alembic_config()
    try:
        upgrade(engine, "0003")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO lab_results (patient_id, result_key, analyte, code, comparator,"
                    " value_text, unit, reference_range, abnormal_flags, status, observed_at,"
                    " received_at, message_time, control_id) VALUES ('P1', 'F1|2000-0',"
                    " 'calcium', '2000-0', '', '7.1', 'mg/dL', '', 'L', 'F', :t, :t, :t, 'C1')"
                ),
                {"t": datetime(2026, 1, 2, 3, 4)},
            )
            connection.execute(
                text(
                    "INSERT INTO processed_messages (sending_facility, control_id, message_type,"
                    " processed_at) VALUES ('LAB', 'C1', 'ORU^R01', :t)"
                ),
                {"t": datetime(2026, 1, 2, 3, 4)},
            )
        upgrade(engine)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT patient_id FROM lab_results")).all() == [("P1",)]
            assert connection.execute(text("SELECT control_id FROM processed_messages")).all() == [
                ("C1",)
            ]
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0003")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id, patient_id FROM lab_results")).all() == [
                (1, "P1")
            ]
    finally:
        engine.dispose()


def test_authority_migration_rekeys_patients_and_their_alerts(database_url: str) -> None:
    # The same MRN from two authorities was one patient; after 0005 each row carries the key
    # of identifier and authority, and an open alert keeps its row under the dedup key that
    # evaluation now computes (so it is neither paged again nor left escalating for ever).
    engine = make_engine(database_url)
    config = alembic_config()
    episode = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    try:
        upgrade(engine, "0004")
        with engine.begin() as connection:
            for patient, authority in (("P1", "GH"), ("P2", "")):
                connection.execute(
                    text(
                        "INSERT INTO patients (patient_id, authority, location, facility,"
                        " service, has_iron, has_antiresorptive, updated_at)"
                        " VALUES (:p, :a, '', '', '', true, true, :t)"
                    ),
                    {"p": patient, "a": authority, "t": episode.replace(tzinfo=None)},
                )
        with engine.begin() as connection:
            for patient in ("P1", "P2"):
                insert_old_alert(connection, patient, episode)
        upgrade(engine)
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT patient_id, dedup_key FROM alerts ORDER BY patient_id")
            ).all()
            patients = connection.execute(
                text("SELECT patient_id FROM patients ORDER BY patient_id")
            ).all()
        assert patients == [("P1^GH",), ("P2",)]
        assert rows == [
            ("P1^GH", dedup_key(RULE_INTERACTION, "P1^GH", "phosphate", episode)),
            ("P2", dedup_key(RULE_INTERACTION, "P2", "phosphate", episode)),
        ]
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0004")
        with engine.connect() as connection:
            assert connection.execute(
                text("SELECT patient_id, dedup_key FROM alerts ORDER BY patient_id")
            ).all() == [
                ("P1", dedup_key(RULE_INTERACTION, "P1", "phosphate", episode)),
                ("P2", dedup_key(RULE_INTERACTION, "P2", "phosphate", episode)),
            ]
    finally:
        engine.dispose()
