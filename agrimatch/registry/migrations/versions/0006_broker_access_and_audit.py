"""Devices' MQTT password hashes, and the audit log of admin actions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Hand-written; names as in ``agrimatch/registry/models.py`` (a test compares
the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "audit_log"


def upgrade() -> None:
    # A nullable column with no constraint: SQLite adds it in place, no batch rebuild.
    op.add_column("devices", sa.Column("mqtt_password_hash", sa.String(160), nullable=True))
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
    )
    op.create_index(f"ix_{TABLE}_at", TABLE, ["at"])


def downgrade() -> None:
    op.drop_index(f"ix_{TABLE}_at", table_name=TABLE)
    op.drop_table(TABLE)
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("mqtt_password_hash")
