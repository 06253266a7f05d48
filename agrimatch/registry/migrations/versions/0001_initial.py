"""Initial registry: crops, regions, farms, fields, devices, seasons, platforms, campaigns.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Hand-written and hand-checked. Portable: only types and constraints both
SQLite and PostgreSQL have (no enum types, CHECKs instead). Creating tables
needs no batch mode on SQLite; every constraint is created with its table and
named as in ``agrimatch/registry/models.py``, so later revisions can alter
them (in ``op.batch_alter_table`` on SQLite).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(64)  # ids match [a-z0-9][a-z0-9_-]{0,63}


def upgrade() -> None:
    op.create_table(
        "crops",
        sa.Column("name", ID, nullable=False),
        sa.Column("perennial", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_crops"),
    )
    op.create_table(
        "regions",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.Column("elevation_m", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_regions"),
    )
    op.create_table(
        "platforms",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("campaign_lead_days", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_platforms"),
    )
    op.create_table(
        "farms",
        sa.Column("id", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_farms"),
        sa.ForeignKeyConstraint(["region_id"], ["regions.id"], name="fk_farms_region_id_regions"),
    )
    op.create_index("ix_farms_region_id", "farms", ["region_id"])
    op.create_table(
        "fields",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("farm_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("area_ha", sa.Double(), nullable=False),
        sa.Column("planting_month_day", sa.String(5), nullable=False),
        sa.Column("soil", sa.String(32), nullable=False),
        sa.Column("lat", sa.Double(), nullable=False),
        sa.Column("lon", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name="pk_fields"),
        sa.ForeignKeyConstraint(
            ["farm_id"], ["farms.id"], name="fk_fields_farm_id_farms", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name="fk_fields_crop_crops"),
        sa.UniqueConstraint("farm_id", "field_id", name="uq_fields_farm_id_field_id"),
        sa.CheckConstraint("area_ha > 0", name="ck_fields_area_positive"),
        sa.CheckConstraint(
            "length(planting_month_day) = 5", name="ck_fields_planting_month_day_shape"
        ),
    )
    op.create_index("ix_fields_crop", "fields", ["crop"])
    op.create_table(
        "devices",
        sa.Column("id", ID, nullable=False),
        sa.Column("farm_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("interval_s", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
        sa.ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_devices_field",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint("kind IN ('sensor', 'camera')", name="ck_devices_kind"),
        sa.CheckConstraint("interval_s > 0", name="ck_devices_interval_positive"),
    )
    op.create_index("ix_devices_farm_id_field_id", "devices", ["farm_id", "field_id"])
    op.create_table(
        "seasons",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("farm_id", ID, nullable=False),
        sa.Column("field_id", ID, nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("planted_on", sa.Date(), nullable=False),
        sa.Column("area_ha", sa.Double(), nullable=False),
        sa.Column("yield_t_ha", sa.Double(), nullable=True),
        sa.Column("quantity_t", sa.Double(), nullable=True),
        sa.Column("harvest_start", sa.Date(), nullable=True),
        sa.Column("harvest_peak", sa.Date(), nullable=True),
        sa.Column("harvest_end", sa.Date(), nullable=True),
        sa.Column("water_stress", sa.Double(), nullable=True),
        sa.Column("heat_stress", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_seasons"),
        sa.ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_seasons_field",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name="fk_seasons_crop_crops"),
        sa.UniqueConstraint("farm_id", "field_id", "year", name="uq_seasons_farm_id_field_id_year"),
        sa.CheckConstraint("area_ha > 0", name="ck_seasons_area_positive"),
        sa.CheckConstraint("yield_t_ha >= 0", name="ck_seasons_yield_non_negative"),
        sa.CheckConstraint("quantity_t >= 0", name="ck_seasons_quantity_non_negative"),
        sa.CheckConstraint(
            "harvest_start <= harvest_peak AND harvest_peak <= harvest_end",
            name="ck_seasons_harvest_ordered",
        ),
        sa.CheckConstraint(
            "water_stress >= 0 AND water_stress <= 1", name="ck_seasons_water_stress_range"
        ),
        sa.CheckConstraint(
            "heat_stress >= 0 AND heat_stress <= 1", name="ck_seasons_heat_stress_range"
        ),
        sa.CheckConstraint(
            "(yield_t_ha IS NULL AND quantity_t IS NULL AND harvest_start IS NULL"
            " AND harvest_peak IS NULL AND harvest_end IS NULL)"
            " OR (yield_t_ha IS NOT NULL AND quantity_t IS NOT NULL AND harvest_start IS NOT NULL"
            " AND harvest_peak IS NOT NULL AND harvest_end IS NOT NULL)",
            name="ck_seasons_truth_complete",
        ),
    )
    op.create_index("ix_seasons_crop_year", "seasons", ["crop", "year"])
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("platform_id", ID, nullable=False),
        sa.Column("crop", ID, nullable=False),
        sa.Column("region_id", ID, nullable=False),
        sa.Column("start_on", sa.Date(), nullable=False),
        sa.Column("end_on", sa.Date(), nullable=False),
        sa.Column("uplift", sa.Double(), nullable=False),
        sa.Column("hangover", sa.Double(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("volume_kg", sa.Double(), nullable=True),
        sa.Column("absorbed_kg", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_campaigns"),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name="fk_campaigns_platform_id_platforms"
        ),
        sa.ForeignKeyConstraint(["crop"], ["crops.name"], name="fk_campaigns_crop_crops"),
        sa.ForeignKeyConstraint(
            ["region_id"], ["regions.id"], name="fk_campaigns_region_id_regions"
        ),
        sa.UniqueConstraint(
            "platform_id", "crop", "region_id", "start_on", "source", name="uq_campaigns_key"
        ),
        sa.CheckConstraint("end_on >= start_on", name="ck_campaigns_dates_ordered"),
        sa.CheckConstraint("uplift > 0", name="ck_campaigns_uplift_positive"),
        sa.CheckConstraint("hangover >= 0 AND hangover < 1", name="ck_campaigns_hangover_range"),
        sa.CheckConstraint("source IN ('history', 'recommended')", name="ck_campaigns_source"),
        sa.CheckConstraint("volume_kg >= 0", name="ck_campaigns_volume_non_negative"),
        sa.CheckConstraint("absorbed_kg >= 0", name="ck_campaigns_absorbed_non_negative"),
    )
    op.create_index(
        "ix_campaigns_crop_region_id_start_on", "campaigns", ["crop", "region_id", "start_on"]
    )
    op.create_index("ix_campaigns_region_id", "campaigns", ["region_id"])


def downgrade() -> None:
    # Children before parents; indexes go with their tables.
    for table in (
        "campaigns",
        "seasons",
        "devices",
        "fields",
        "farms",
        "platforms",
        "regions",
        "crops",
    ):
        op.drop_table(table)
