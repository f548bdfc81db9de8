"""alerts.public_id: a random, opaque id that names an alert outside the database

The dedup key hashes rule, patient identifier, analyte and episode start without a secret, so
anyone who sees it (in an ack link, a webhook header or body, a log line) can find the MRN by
trying every number of the hospital's range. Ack links, pages, webhook headers and bodies now
carry ``public_id`` instead: 128 random bits, unrelated to the patient. Existing alerts get a
fresh random id each; the dedup key stays as it is (the database dedupe depends on it).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("public_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True)
        )
    connection = op.get_bind()
    ids = connection.execute(sa.text("SELECT id FROM alerts")).scalars().all()
    for alert_id in ids:
        # Drawn here, not from the models' factory: a migration means the same whatever the
        # models become.
        connection.execute(
            sa.text("UPDATE alerts SET public_id = :public_id WHERE id = :id"),
            {"public_id": secrets.token_urlsafe(16), "id": alert_id},
        )
    with op.batch_alter_table("alerts") as batch:
        batch.alter_column(
            "public_id",
            existing_type=sqlmodel.sql.sqltypes.AutoString(length=32),
            nullable=False,
        )
        batch.create_index("ix_alerts_public_id", ["public_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_index("ix_alerts_public_id")
        batch.drop_column("public_id")
