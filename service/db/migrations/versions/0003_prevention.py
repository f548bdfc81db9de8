"""prevention: patient aliases (merges), advisories, reminders

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import service.db.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_STR = sqlmodel.sql.sqltypes.AutoString
_TIME = service.db.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "patient_aliases",
        sa.Column("prior_id", _STR(length=64), primary_key=True),
        sa.Column("surviving_id", _STR(length=64), nullable=False),
        sa.Column("merged_at", _TIME(), nullable=False),
        sa.Column("control_id", _STR(length=199), nullable=False),
    )
    op.create_index("ix_patient_aliases_surviving_id", "patient_aliases", ["surviving_id"])
    op.create_table(
        "advisories",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("dedup_key", _STR(length=64), nullable=False, unique=True),
        sa.Column("patient_id", _STR(length=64), nullable=False),
        sa.Column("episode_start", _TIME(), nullable=False),
        sa.Column("iron_drug", _STR(length=64), nullable=False),
        sa.Column("antiresorptive_drug", _STR(length=64), nullable=False),
        sa.Column("ordering_provider", _STR(length=64), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("created_at", _TIME(), nullable=False),
    )
    op.create_index("ix_advisories_patient_id", "advisories", ["patient_id"])
    op.create_table(
        "reminders",
        sa.Column("id", _STR(length=64), primary_key=True),
        sa.Column("patient_id", _STR(length=64), nullable=False),
        sa.Column("episode_start", _TIME(), nullable=False),
        sa.Column("label", _STR(length=32), nullable=False),
        sa.Column("sent_at", _TIME(), nullable=False),
        sa.Column("cleared_at", _TIME(), nullable=True),
    )
    op.create_index("ix_reminders_patient_id", "reminders", ["patient_id"])


def downgrade() -> None:
    op.drop_table("reminders")
    op.drop_table("advisories")
    op.drop_table("patient_aliases")
