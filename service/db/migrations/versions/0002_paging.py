"""paging: routing team, escalation state, corrective stop, silences, alert history

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.db.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("team", _STR(length=64), nullable=False, server_default=""))
        batch.add_column(sa.Column("paged_at", service.db.types.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("escalation_tier", sa.Integer(), nullable=False, server_default="1")
        )
        batch.add_column(
            sa.Column("escalation_round", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("escalation_step", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("escalation_state", _STR(length=16), nullable=False, server_default="")
        )
        batch.add_column(
            sa.Column("stop_reason", _STR(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("corrective_at", service.db.types.UTCDateTime(), nullable=True))
        batch.add_column(
            sa.Column("corrective_drug", _STR(length=64), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("silence_id", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("delivery_failed_at", service.db.types.UTCDateTime(), nullable=True)
        )
        batch.create_index("ix_alerts_escalation_state", ["escalation_state"])
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(
            sa.Column("fallback", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("kind", _STR(length=32), nullable=False),
        sa.Column("at", service.db.types.UTCDateTime(), nullable=False),
        sa.Column("actor", _STR(length=128), nullable=False),
        sa.Column("notification_id", _STR(length=64), nullable=False),
        sa.Column("detail", sa.Text(), server_default="", nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_alert_events_alert_id", "alert_events", ["alert_id"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", _STR(length=64), nullable=False),
        sa.Column("unit", _STR(length=64), nullable=False),
        sa.Column("rule", _STR(length=64), nullable=False),
        sa.Column("author", _STR(length=128), nullable=False),
        sa.Column("reason", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", service.db.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", service.db.types.UTCDateTime(), nullable=False),
        sa.Column("expired_at", service.db.types.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    op.drop_table("silences")
    op.drop_index("ix_alert_events_alert_id", table_name="alert_events")
    op.drop_table("alert_events")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("fallback")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_escalation_state")
        for column in (
            "delivery_failed_at", "silence_id", "corrective_drug", "corrective_at",
            "stop_reason", "escalation_state", "escalation_step", "escalation_round",
            "escalation_tier", "paged_at", "team",
        ):  # fmt: skip
            batch.drop_column(column)
