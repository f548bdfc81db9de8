"""patients keyed by identifier and assigning authority; RXA-20 on stored administrations

Until now a patient was keyed by PID-3.1 alone, so the same number from two assigning
authorities was one patient, and one person's iron plus another's denosumab could page. The
key is now ``alerts.identity.patient_key(PID-3.1, PID-3.4)``. Every row of a patient whose
stored authority is not empty (or whose identifier holds a character the key escapes) moves to
the new key; alerts, advisories and reminders get the dedup keys that evaluation now computes
for them, so an open alert keeps its history and escalation instead of being paged anew. A
merged-away identifier (patient_aliases.prior_id) has no stored authority of its own: it takes
its survivor's, as merges happen within one hospital's identifier space.

medication_orders gains completion_status (RXA-20): an administration that was not given (NA)
or refused (RE) is kept for the record but opens no window. dead_letters.offset becomes a
64-bit integer on PostgreSQL: Kafka offsets pass 2^31, and a dead letter that cannot be
stored would leave its message only on the dead-letter topic.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

from alerts.dedup import dedup_key
from alerts.identity import patient_key, split_patient_key
from service.db.types import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Stable names of the rules whose dedup keys hash the patient (alerts.advisory,
# alerts.monitoring): written out so that this migration means the same whatever they become.
_RULE_ADVISORY = "iron-antiresorptive-advisory"
_RULE_MONITORING = "iron-antiresorptive-monitoring"
_PATIENT_TABLES = ("patients", "lab_results", "medication_orders", "alerts", "silences")
_KEYED_TABLES = ("advisories", "reminders")


def upgrade() -> None:
    op.add_column(
        "medication_orders",
        sa.Column(
            "completion_status",
            sqlmodel.sql.sqltypes.AutoString(length=2),
            nullable=False,
            server_default="",
        ),
    )
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        op.alter_column("dead_letters", "offset", type_=sa.BigInteger())
    rows = connection.execute(sa.text("SELECT patient_id, authority FROM patients")).all()
    mapping = {old: patient_key(old, authority) for old, authority in rows}

    def alias(prior: str, surviving: str) -> tuple[str, str]:
        survivor = mapping.get(surviving, surviving)
        return patient_key(prior, split_patient_key(survivor)[1]), survivor

    _rekey(connection, mapping, alias)


def downgrade() -> None:
    connection = op.get_bind()
    keys = connection.execute(sa.text("SELECT patient_id FROM patients")).scalars().all()
    mapping = {key: split_patient_key(key)[0] for key in keys}

    def alias(prior: str, surviving: str) -> tuple[str, str]:
        return split_patient_key(prior)[0], mapping.get(surviving, surviving)

    _rekey(connection, mapping, alias)
    with op.batch_alter_table("medication_orders") as batch:
        batch.drop_column("completion_status")
    if connection.dialect.name == "postgresql":
        op.alter_column("dead_letters", "offset", type_=sa.Integer())


def _rekey(
    connection: sa.Connection,
    mapping: dict[str, str],
    alias: Callable[[str, str], tuple[str, str]],
) -> None:
    """Move every row of each patient in ``mapping`` (old key -> new key), and re-point the
    aliases (``alias(prior, surviving)`` gives their new pair)."""
    for prior, surviving in connection.execute(
        sa.text("SELECT prior_id, surviving_id FROM patient_aliases")
    ).all():
        new_prior, new_surviving = alias(prior, surviving)
        if (new_prior, new_surviving) != (prior, surviving):
            connection.execute(
                sa.text(
                    "UPDATE patient_aliases SET prior_id = :new_prior, surviving_id = :new_surv "
                    "WHERE prior_id = :prior"
                ),
                {"new_prior": new_prior, "new_surv": new_surviving, "prior": prior},
            )
    moved = {old: new for old, new in mapping.items() if old != new}
    if not moved:
        return
    pairs = [{"old": old, "new": new} for old, new in moved.items()]
    for table in (*_PATIENT_TABLES, *_KEYED_TABLES):
        connection.execute(
            sa.text(f"UPDATE {table} SET patient_id = :new WHERE patient_id = :old"), pairs
        )
    patients = set(moved.values())
    _renew_keys(
        connection,
        "SELECT dedup_key, patient_id, rule, analyte, episode_start FROM alerts",
        lambda row: dedup_key(row.rule, row.patient_id, row.analyte, row.episode_start),
        ("alerts", "notifications"),
        "dedup_key",
        patients,
    )
    _renew_keys(
        connection,
        "SELECT dedup_key, patient_id, episode_start FROM advisories",
        lambda row: dedup_key(_RULE_ADVISORY, row.patient_id, "advisory", row.episode_start),
        ("advisories",),
        "dedup_key",
        patients,
    )
    _renew_keys(
        connection,
        "SELECT id, patient_id, label, episode_start FROM reminders",
        lambda row: dedup_key(_RULE_MONITORING, row.patient_id, row.label, row.episode_start),
        ("reminders",),
        "id",
        patients,
    )


def _renew_keys(
    connection: sa.Connection,
    query: str,
    key_of: Callable[[Any], str],
    tables: tuple[str, ...],
    column: str,
    patients: set[str],
) -> None:
    """Recompute the key (``column``, the query's first column) of each row of a moved
    patient, in each of ``tables``."""
    typed = sa.text(query).columns(episode_start=UTCDateTime())
    changes = [
        {"old": row[0], "new": key_of(row)}
        for row in connection.execute(typed)
        if row.patient_id in patients
    ]
    changes = [c for c in changes if c["old"] != c["new"]]
    if not changes:
        return
    for table in tables:
        connection.execute(
            sa.text(f"UPDATE {table} SET {column} = :new WHERE {column} = :old"), changes
        )
