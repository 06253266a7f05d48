"""Campaign proposals: a platform's answer to a recommended campaign, and its outcome.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-08

Hand-written; names as in ``agrimatch/registry/models.py`` (a test compares
the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)
TABLE = "campaign_proposals"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("campaign_json", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("kg_sold", sa.Double(), nullable=True),
        sa.Column("sold_start", sa.Date(), nullable=True),
        sa.Column("sold_end", sa.Date(), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.ForeignKeyConstraint(
            ["platform_id"],
            ["platforms.id"],
            name=f"fk_{TABLE}_platform_id_platforms",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name=f"fk_{TABLE}_crop_crops"),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name=f"fk_{TABLE}_region_id_regions"
        ),
        sa.ForeignKeyConstraint(["run_id"], ["job_runs.id"], name=f"fk_{TABLE}_run_id_job_runs"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=f"fk_{TABLE}_campaign_id_campaigns",
            ondelete="SET NULL",
        ),
        sa.UniqueConstraint(
            "platform_id", "crop", "region_id", "start_on", name="uq_campaign_proposals_key"
        ),
        sa.CheckConstraint(
            "status IN ('accepted', 'declined', 'reported')", name=f"ck_{TABLE}_status"
        ),
        sa.CheckConstraint("end_on >= start_on", name=f"ck_{TABLE}_dates_ordered"),
        sa.CheckConstraint("kg_sold >= 0", name=f"ck_{TABLE}_kg_sold_non_negative"),
        sa.CheckConstraint("sold_end >= sold_start", name=f"ck_{TABLE}_sold_dates_ordered"),
        sa.CheckConstraint(
            "(status = 'reported' AND kg_sold IS NOT NULL AND sold_start IS NOT NULL"
            " AND sold_end IS NOT NULL)"
            " OR (status <> 'reported' AND kg_sold IS NULL AND sold_start IS NULL"
            " AND sold_end IS NULL)",
            name=f"ck_{TABLE}_outcome_when_reported",
        ),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
