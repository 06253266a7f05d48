"""API keys (hashed, with role and scope) and device configs (alert thresholds).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-08

Hand-written; names as in ``agrimatch/registry/models.py`` (a test compares
the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("device_id", ID, nullable=True),
        sa.Column("platform_id", ID, nullable=True),
        sa.Column("farm_ids_json", sa.Text(), nullable=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_api_keys_device_id_devices",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name="fk_api_keys_platform_id_platforms",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "role IN ('device', 'agronomist', 'platform', 'admin')", name="ck_api_keys_role"
        ),
        sa.CheckConstraint(
            "(role = 'device' AND device_id IS NOT NULL AND platform_id IS NULL"
            " AND farm_ids_json IS NULL)"
            " OR (role = 'agronomist' AND farm_ids_json IS NOT NULL AND device_id IS NULL"
            " AND platform_id IS NULL)"
            " OR (role = 'platform' AND platform_id IS NOT NULL AND device_id IS NULL"
            " AND farm_ids_json IS NULL)"
            " OR (role = 'admin' AND device_id IS NULL AND platform_id IS NULL"
            " AND farm_ids_json IS NULL)",
            name="ck_api_keys_scope_matches_role",
        ),
    )
    op.create_table(
        "device_configs",
        sa.Column("device_id", ID, nullable=False),
        sa.Column("thresholds_json", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_device_configs"),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name="fk_device_configs_device_id_devices",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("device_configs")
    op.drop_table("api_keys")
