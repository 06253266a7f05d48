"""Forecasting: job runs, field forecasts, recommendations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Hand-written; names as in ``agrimatch/registry/models.py`` (a test compares
the migrated schema with the models on SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=True),
        sa.Column("metrics_json", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
        sa.CheckConstraint("status IN ('running', 'ok', 'failed')", name="ck_job_runs_status"),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"])
    op.create_table(
        "field_forecasts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("farm_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("yield_t_ha_p10", sa.Double(), nullable=False),
        sa.Column("yield_t_ha_p50", sa.Double(), nullable=False),
        sa.Column("yield_t_ha_p90", sa.Double(), nullable=False),
        sa.Column("harvest_p10", sa.Date(), nullable=True),
        sa.Column("harvest_p50", sa.Date(), nullable=True),
        sa.Column("harvest_p90", sa.Date(), nullable=True),
        sa.Column("drivers_json", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_field_forecasts"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["job_runs.id"], name="fk_field_forecasts_run_id_job_runs"
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name="fk_field_forecasts_crop_crops"),
        sa.ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_field_forecasts_field",
        ),
        sa.UniqueConstraint(
            "as_of", "model_version", "farm_id", "field_id", "year", name="uq_field_forecasts_key"
        ),
        sa.CheckConstraint(
            "yield_t_ha_p10 <= yield_t_ha_p50 AND yield_t_ha_p50 <= yield_t_ha_p90",
            name="ck_field_forecasts_yield_quantiles_ordered",
        ),
    )
    op.create_index("ix_field_forecasts_as_of", "field_forecasts", ["as_of"])
    op.create_table(
        "recommendations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("model_version", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("body_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_recommendations"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["job_runs.id"], name="fk_recommendations_run_id_job_runs"
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name="fk_recommendations_crop_crops"),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name="fk_recommendations_region_id_regions"
        ),
        sa.CheckConstraint("kind IN ('campaign', 'planting')", name="ck_recommendations_kind"),
    )
    op.create_index("ix_recommendations_as_of_kind", "recommendations", ["as_of", "kind"])


def downgrade() -> None:
    op.drop_index("ix_recommendations_as_of_kind", table_name="recommendations")
    op.drop_table("recommendations")
    op.drop_index("ix_field_forecasts_as_of", table_name="field_forecasts")
    op.drop_table("field_forecasts")
    op.drop_index("ix_job_runs_job_started_at", table_name="job_runs")
    op.drop_table("job_runs")
