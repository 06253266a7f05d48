"""Weekly supply, demand and balance of each forecast run; who reported a harvest.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07

Hand-written; names as in ``agrimatch/registry/models.py`` (a test compares
the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)


def _run_columns(table: str) -> list[Any]:
    return [
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.ForeignKeyConstraint(["run_id"], ["job_runs.id"], name=f"fk_{table}_run_id_job_runs"),
    ]


def _quantiles(prefix: str) -> list[sa.Column[float]]:
    return [sa.Column(f"{prefix}_p{q}", sa.Double(), nullable=False) for q in (10, 50, 90)]


def upgrade() -> None:
    with op.batch_alter_table("seasons") as batch:
        batch.add_column(sa.Column("reported_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "weekly_supply",
        *_run_columns("weekly_supply"),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        *_quantiles("supply_kg"),
    )
    op.create_index("ix_weekly_supply_run_id", "weekly_supply", ["run_id"])
    op.create_table(
        "weekly_demand",
        *_run_columns("weekly_demand"),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        *_quantiles("demand_kg"),
    )
    op.create_index("ix_weekly_demand_run_id", "weekly_demand", ["run_id"])
    op.create_table(
        "weekly_balance",
        *_run_columns("weekly_balance"),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        *_quantiles("supply_kg"),
        *_quantiles("demand_kg"),
        sa.Column("surplus_kg_p50", sa.Double(), nullable=False),
        sa.Column("p_surplus", sa.Double(), nullable=False),
        sa.Column("p_shortfall", sa.Double(), nullable=False),
    )
    op.create_index("ix_weekly_balance_run_id", "weekly_balance", ["run_id"])


def downgrade() -> None:
    for table in ("weekly_balance", "weekly_demand", "weekly_supply"):
        op.drop_index(f"ix_{table}_run_id", table_name=table)
        op.drop_table(table)
    with op.batch_alter_table("seasons") as batch:
        batch.drop_column("reported_at")
        batch.drop_column("reported_by")
