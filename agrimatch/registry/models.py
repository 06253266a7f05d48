"""The registry's tables as SQLAlchemy 2.x typed declarative models.

Natural ids (region, farm, device, platform, crop) are the primary keys, so
rows read the same as topics and scenario files. A field's id is unique only
within its farm; devices and seasons point at it by ``(farm_id, field_id)``,
which is how devices address it on the wire. Units are in the column names.

Every constraint carries an explicit name: Alembic needs names to alter or drop
a constraint later, and SQLite's batch mode rebuilds tables by those names.
``migrations/versions/0001_initial.py`` writes the same names by hand; a test
compares it with these models on both backends.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Literal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ID_LENGTH = 64  # agrimatch.contract.topics.ID_RE allows 1 + 63 characters
DeviceKind = Literal["sensor", "camera"]
CampaignSource = Literal["history", "recommended"]

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A moment in UTC, read back timezone-aware on every backend.

    SQLite stores no offset, so its rows would come back naive (and the API
    would print times without one); PostgreSQL's ``timestamptz`` keeps it. A
    naive datetime written here is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _id() -> String:
    return String(ID_LENGTH)


class Crop(Base):
    """A crop of the agronomy catalog (``agrimatch.agronomy.CROPS``), kept in sync by name."""

    __tablename__ = "crops"

    name: Mapped[str] = mapped_column(_id(), primary_key=True)
    perennial: Mapped[bool] = mapped_column(Boolean)


class Region(Base):
    __tablename__ = "regions"

    id: Mapped[str] = mapped_column(_id(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)
    elevation_m: Mapped[float] = mapped_column(Double)

    farms: Mapped[list[Farm]] = relationship(back_populates="region")


class Farm(Base):
    __tablename__ = "farms"
    __table_args__ = (Index("ix_farms_region_id", "region_id"),)

    id: Mapped[str] = mapped_column(_id(), primary_key=True)
    region_id: Mapped[str] = mapped_column(_id(), ForeignKey("regions.id"))
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)

    region: Mapped[Region] = relationship(back_populates="farms")
    fields: Mapped[list[Field]] = relationship(
        back_populates="farm", cascade="all, delete-orphan", passive_deletes=True
    )


class Field(Base):
    """A field of a farm: what grows there, how large, planted when, on what soil."""

    __tablename__ = "fields"
    __table_args__ = (
        UniqueConstraint("farm_id", "field_id", name="uq_fields_farm_id_field_id"),
        CheckConstraint("area_ha > 0", name="area_positive"),
        # "MM-DD"; the scenario schema validates the digits, the database the shape.
        CheckConstraint("length(planting_month_day) = 5", name="planting_month_day_shape"),
        Index("ix_fields_crop", "crop"),
    )

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    farm_id: Mapped[str] = mapped_column(_id(), ForeignKey("farms.id", ondelete="CASCADE"))
    field_id: Mapped[str] = mapped_column(_id())
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    area_ha: Mapped[float] = mapped_column(Double)
    planting_month_day: Mapped[str] = mapped_column(String(5))
    soil: Mapped[str] = mapped_column(String(32))
    lat: Mapped[float] = mapped_column(Double)
    lon: Mapped[float] = mapped_column(Double)

    farm: Mapped[Farm] = relationship(back_populates="fields")
    devices: Mapped[list[Device]] = relationship(
        back_populates="field", cascade="all, delete-orphan", passive_deletes=True
    )
    seasons: Mapped[list[Season]] = relationship(
        back_populates="field", cascade="all, delete-orphan", passive_deletes=True
    )


class Device(Base):
    """A field device; ``(farm_id, field_id, id)`` is its MQTT topic address."""

    __tablename__ = "devices"
    __table_args__ = (
        ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_devices_field",
            ondelete="CASCADE",
        ),
        CheckConstraint("kind IN ('sensor', 'camera')", name="kind"),
        CheckConstraint("interval_s > 0", name="interval_positive"),
        # Foreign keys get no index of their own on PostgreSQL.
        Index("ix_devices_farm_id_field_id", "farm_id", "field_id"),
    )

    id: Mapped[str] = mapped_column(_id(), primary_key=True)
    farm_id: Mapped[str] = mapped_column(_id())
    field_id: Mapped[str] = mapped_column(_id())
    kind: Mapped[DeviceKind] = mapped_column(String(16))
    interval_s: Mapped[float] = mapped_column(Double)
    # The Mosquitto 2.0 "$7$" hash of its MQTT password (agrimatch.broker_access);
    # null for devices registered before provisioning made one (scenario devices).
    mqtt_password_hash: Mapped[str | None] = mapped_column(String(160))

    field: Mapped[Field] = relationship(back_populates="devices")


class Season(Base):
    """One growing season of a field, with its truth once the harvest is in.

    The plan (crop, planting date, area) is known at planting; the truth columns
    stay NULL until recorded, and are then set together (``truth_complete``).
    ``water_stress`` and ``heat_stress`` are unitless season indices in [0, 1]
    (0 none, 1 the whole season under stress).
    """

    __tablename__ = "seasons"
    __table_args__ = (
        ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_seasons_field",
            ondelete="CASCADE",
        ),
        UniqueConstraint("farm_id", "field_id", "year", name="uq_seasons_farm_id_field_id_year"),
        CheckConstraint("area_ha > 0", name="area_positive"),
        CheckConstraint("yield_t_ha >= 0", name="yield_non_negative"),
        CheckConstraint("quantity_t >= 0", name="quantity_non_negative"),
        CheckConstraint(
            "harvest_start <= harvest_peak AND harvest_peak <= harvest_end", name="harvest_ordered"
        ),
        CheckConstraint("water_stress >= 0 AND water_stress <= 1", name="water_stress_range"),
        CheckConstraint("heat_stress >= 0 AND heat_stress <= 1", name="heat_stress_range"),
        CheckConstraint(
            "(yield_t_ha IS NULL AND quantity_t IS NULL AND harvest_start IS NULL"
            " AND harvest_peak IS NULL AND harvest_end IS NULL)"
            " OR (yield_t_ha IS NOT NULL AND quantity_t IS NOT NULL AND harvest_start IS NOT NULL"
            " AND harvest_peak IS NOT NULL AND harvest_end IS NOT NULL)",
            name="truth_complete",
        ),
        Index("ix_seasons_crop_year", "crop", "year"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    farm_id: Mapped[str] = mapped_column(_id())
    field_id: Mapped[str] = mapped_column(_id())
    year: Mapped[int] = mapped_column(Integer)
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    planted_on: Mapped[date] = mapped_column(Date)
    area_ha: Mapped[float] = mapped_column(Double)

    yield_t_ha: Mapped[float | None] = mapped_column(Double)
    quantity_t: Mapped[float | None] = mapped_column(Double)
    harvest_start: Mapped[date | None] = mapped_column(Date)
    harvest_peak: Mapped[date | None] = mapped_column(Date)
    harvest_end: Mapped[date | None] = mapped_column(Date)
    water_stress: Mapped[float | None] = mapped_column(Double)
    heat_stress: Mapped[float | None] = mapped_column(Double)
    # Who recorded the truth (an agronomist's name or key, "simulator" for backfills), and when.
    reported_by: Mapped[str | None] = mapped_column(String(200))
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())

    field: Mapped[Field] = relationship(back_populates="seasons")

    @property
    def has_truth(self) -> bool:
        return self.yield_t_ha is not None


class Platform(Base):
    __tablename__ = "platforms"

    id: Mapped[str] = mapped_column(_id(), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    campaign_lead_days: Mapped[int] = mapped_column(Integer)

    campaigns: Mapped[list[Campaign]] = relationship(back_populates="platform")


class Campaign(Base):
    """A group-buying campaign: one that happened, or one recommended.

    ``uplift`` multiplies demand while it runs, ``hangover`` is the dip after.
    The outcome (``volume_kg`` sold through the campaign, ``absorbed_kg`` of
    it that cleared otherwise unsold supply) is NULL until recorded.
    """

    __tablename__ = "campaigns"
    __table_args__ = (
        # A recommendation never overwrites the history of the same campaign.
        UniqueConstraint(
            "platform_id", "crop", "region_id", "start_on", "source", name="uq_campaigns_key"
        ),
        CheckConstraint("end_on >= start_on", name="dates_ordered"),
        CheckConstraint("uplift > 0", name="uplift_positive"),
        CheckConstraint("hangover >= 0 AND hangover < 1", name="hangover_range"),
        CheckConstraint("source IN ('history', 'recommended')", name="source"),
        CheckConstraint("volume_kg >= 0", name="volume_non_negative"),
        CheckConstraint("absorbed_kg >= 0", name="absorbed_non_negative"),
        Index("ix_campaigns_crop_region_id_start_on", "crop", "region_id", "start_on"),
        Index("ix_campaigns_region_id", "region_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform_id: Mapped[str] = mapped_column(_id(), ForeignKey("platforms.id"))
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    region_id: Mapped[str] = mapped_column(_id(), ForeignKey("regions.id"))
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    uplift: Mapped[float] = mapped_column(Double)
    hangover: Mapped[float] = mapped_column(Double)
    source: Mapped[CampaignSource] = mapped_column(String(16))
    volume_kg: Mapped[float | None] = mapped_column(Double)
    absorbed_kg: Mapped[float | None] = mapped_column(Double)

    platform: Mapped[Platform] = relationship(back_populates="campaigns")


JobStatus = Literal["running", "ok", "failed"]
RecommendationKind = Literal["campaign", "planting"]


class JobRun(Base):
    """One run of a scheduled or manual job: what ran, as of when, how it ended."""

    __tablename__ = "job_runs"
    __table_args__ = (
        CheckConstraint("status IN ('running', 'ok', 'failed')", name="status"),
        Index("ix_job_runs_job_started_at", "job", "started_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64))
    as_of: Mapped[date | None] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    status: Mapped[JobStatus] = mapped_column(String(16))
    model_version: Mapped[str | None] = mapped_column(String(200))
    metrics_json: Mapped[str | None] = mapped_column(Text)  # JSON object
    error: Mapped[str | None] = mapped_column(Text)


class FieldForecast(Base):
    """A field's yield and harvest forecast as of a date, by one model version."""

    __tablename__ = "field_forecasts"
    __table_args__ = (
        UniqueConstraint(
            "as_of", "model_version", "farm_id", "field_id", "year", name="uq_field_forecasts_key"
        ),
        ForeignKeyConstraint(
            ["farm_id", "field_id"],
            ["fields.farm_id", "fields.field_id"],
            name="fk_field_forecasts_field",
        ),
        CheckConstraint(
            "yield_t_ha_p10 <= yield_t_ha_p50 AND yield_t_ha_p50 <= yield_t_ha_p90",
            name="yield_quantiles_ordered",
        ),
        Index("ix_field_forecasts_as_of", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("job_runs.id"))
    as_of: Mapped[date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(200))
    farm_id: Mapped[str] = mapped_column(_id())
    field_id: Mapped[str] = mapped_column(_id())
    year: Mapped[int] = mapped_column(Integer)
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    yield_t_ha_p10: Mapped[float] = mapped_column(Double)
    yield_t_ha_p50: Mapped[float] = mapped_column(Double)
    yield_t_ha_p90: Mapped[float] = mapped_column(Double)
    harvest_p10: Mapped[date | None] = mapped_column(Date)
    harvest_p50: Mapped[date | None] = mapped_column(Date)
    harvest_p90: Mapped[date | None] = mapped_column(Date)
    drivers_json: Mapped[str | None] = mapped_column(Text)  # JSON list of [feature, effect_t_ha]
    # How far the interval can be trusted and what calibrated it (forecasting.interval_calibration);
    # the model's own P10/P90 before a stored-residual calibration. NULL: stored before 0007.
    interval_trust: Mapped[str | None] = mapped_column(String(20))
    training_seasons: Mapped[int | None] = mapped_column(Integer)
    calibration: Mapped[str | None] = mapped_column(String(40))
    yield_t_ha_p10_model: Mapped[float | None] = mapped_column(Double)
    yield_t_ha_p90_model: Mapped[float | None] = mapped_column(Double)


class Recommendation(Base):
    """A campaign or planting recommendation of a run, ranked; the body is JSON."""

    __tablename__ = "recommendations"
    __table_args__ = (
        CheckConstraint("kind IN ('campaign', 'planting')", name="kind"),
        Index("ix_recommendations_as_of_kind", "as_of", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("job_runs.id"))
    as_of: Mapped[date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(200))
    kind: Mapped[RecommendationKind] = mapped_column(String(16))
    rank: Mapped[int] = mapped_column(Integer)
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    region_id: Mapped[str] = mapped_column(_id(), ForeignKey("regions.id"))
    body_json: Mapped[str] = mapped_column(Text)


class _RunResult:
    """Columns every stored result of a forecast run has: the run, its date and model."""

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("job_runs.id"), index=True)
    as_of: Mapped[date] = mapped_column(Date)
    model_version: Mapped[str] = mapped_column(String(200))


class WeeklySupply(_RunResult, Base):
    """A run's projected supply of a crop in a region in a week (the Monday), in kg."""

    __tablename__ = "weekly_supply"

    crop: Mapped[str] = mapped_column(_id())
    region_id: Mapped[str] = mapped_column(_id())
    week: Mapped[date] = mapped_column(Date)
    supply_kg_p10: Mapped[float] = mapped_column(Double)
    supply_kg_p50: Mapped[float] = mapped_column(Double)
    supply_kg_p90: Mapped[float] = mapped_column(Double)


class WeeklyDemand(_RunResult, Base):
    """A run's demand forecast of one platform for a crop in a region in a week, in kg."""

    __tablename__ = "weekly_demand"

    platform_id: Mapped[str] = mapped_column(_id())
    crop: Mapped[str] = mapped_column(_id())
    region_id: Mapped[str] = mapped_column(_id())
    week: Mapped[date] = mapped_column(Date)
    demand_kg_p10: Mapped[float] = mapped_column(Double)
    demand_kg_p50: Mapped[float] = mapped_column(Double)
    demand_kg_p90: Mapped[float] = mapped_column(Double)


class WeeklyBalance(_RunResult, Base):
    """A run's supply against all platforms' demand for a crop in a region in a week."""

    __tablename__ = "weekly_balance"

    crop: Mapped[str] = mapped_column(_id())
    region_id: Mapped[str] = mapped_column(_id())
    week: Mapped[date] = mapped_column(Date)
    supply_kg_p10: Mapped[float] = mapped_column(Double)
    supply_kg_p50: Mapped[float] = mapped_column(Double)
    supply_kg_p90: Mapped[float] = mapped_column(Double)
    demand_kg_p10: Mapped[float] = mapped_column(Double)
    demand_kg_p50: Mapped[float] = mapped_column(Double)
    demand_kg_p90: Mapped[float] = mapped_column(Double)
    surplus_kg_p50: Mapped[float] = mapped_column(Double)  # negative: shortfall
    p_surplus: Mapped[float] = mapped_column(Double)
    p_shortfall: Mapped[float] = mapped_column(Double)


ApiKeyRole = Literal["device", "agronomist", "platform", "admin"]


class ApiKey(Base):
    """An API key: who holds it (role and scope), its secret's keyed hash, its life.

    The key is ``agm_{id}_{secret}``; the id is public (lookup), the secret is
    stored only as HMAC-SHA256 under the server's pepper (``agrimatch.auth``).
    The scope columns match the role: a device key names its device, a
    platform key its platform, an agronomist key its farms (a JSON list of
    farm ids: a cooperative is the set of farms it advises); an admin key
    names none.
    """

    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("role IN ('device', 'agronomist', 'platform', 'admin')", name="role"),
        CheckConstraint(
            "(role = 'device' AND device_id IS NOT NULL AND platform_id IS NULL"
            " AND farm_ids_json IS NULL)"
            " OR (role = 'agronomist' AND farm_ids_json IS NOT NULL AND device_id IS NULL"
            " AND platform_id IS NULL)"
            " OR (role = 'platform' AND platform_id IS NOT NULL AND device_id IS NULL"
            " AND farm_ids_json IS NULL)"
            " OR (role = 'admin' AND device_id IS NULL AND platform_id IS NULL"
            " AND farm_ids_json IS NULL)",
            name="scope_matches_role",
        ),
    )

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[ApiKeyRole] = mapped_column(String(16))
    # A key dies with what it speaks for.
    device_id: Mapped[str | None] = mapped_column(
        _id(), ForeignKey("devices.id", ondelete="CASCADE")
    )
    platform_id: Mapped[str | None] = mapped_column(
        _id(), ForeignKey("platforms.id", ondelete="CASCADE")
    )
    farm_ids_json: Mapped[str | None] = mapped_column(Text)  # JSON list of farm ids
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex HMAC-SHA256
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class DeviceConfig(Base):
    """A device's alert thresholds, set through the API; its interval is ``Device.interval_s``.

    ``thresholds_json`` maps a sensor to ``{"min": x, "max": y}`` (either may
    be null). The row exists once a config was set; what the device was told is
    this plus the interval, published retained on its config topic.
    """

    __tablename__ = "device_configs"

    device_id: Mapped[str] = mapped_column(
        _id(), ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    thresholds_json: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by: Mapped[str] = mapped_column(String(200))  # the key's name and id


ProposalStatus = Literal["accepted", "declined", "reported"]


class CampaignProposal(Base):
    """A platform's answer to a campaign a forecast run recommends to it.

    A proposal is keyed by the campaign it proposes (platform, crop, region,
    start), so the daily rerun that proposes the same campaign again keeps the
    answer. A row exists once the platform answers; until then the proposal is
    "proposed" and lives only in the run's recommendations. ``campaign_json``
    is the campaign as proposed (the run's campaign result), kept so that an
    accepted campaign can still be reported after newer runs stop proposing it.
    The outcome (``kg_sold`` over ``sold_start``..``sold_end``) is set all at
    once when reported, and written as the history ``Campaign``
    (``campaign_id``) that the uplift estimate learns from.
    """

    __tablename__ = "campaign_proposals"
    __table_args__ = (
        UniqueConstraint(
            "platform_id", "crop", "region_id", "start_on", name="uq_campaign_proposals_key"
        ),
        CheckConstraint("status IN ('accepted', 'declined', 'reported')", name="status"),
        CheckConstraint("end_on >= start_on", name="dates_ordered"),
        CheckConstraint("kg_sold >= 0", name="kg_sold_non_negative"),
        CheckConstraint("sold_end >= sold_start", name="sold_dates_ordered"),
        CheckConstraint(
            "(status = 'reported' AND kg_sold IS NOT NULL AND sold_start IS NOT NULL"
            " AND sold_end IS NOT NULL)"
            " OR (status <> 'reported' AND kg_sold IS NULL AND sold_start IS NULL"
            " AND sold_end IS NULL)",
            name="outcome_when_reported",
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # A platform's answers go with it.
    platform_id: Mapped[str] = mapped_column(_id(), ForeignKey("platforms.id", ondelete="CASCADE"))
    crop: Mapped[str] = mapped_column(_id(), ForeignKey("crops.name"))
    region_id: Mapped[str] = mapped_column(_id(), ForeignKey("regions.id"))
    start_on: Mapped[date] = mapped_column(Date)
    end_on: Mapped[date] = mapped_column(Date)
    run_id: Mapped[int] = mapped_column(Integer, ForeignKey("job_runs.id"))  # answered from
    campaign_json: Mapped[str] = mapped_column(Text)  # the campaign as proposed
    status: Mapped[ProposalStatus] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)  # why it was declined, if said
    decided_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_by: Mapped[str] = mapped_column(String(200))  # the key's name and id
    kg_sold: Mapped[float | None] = mapped_column(Double)
    sold_start: Mapped[date | None] = mapped_column(Date)
    sold_end: Mapped[date | None] = mapped_column(Date)
    reported_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The history campaign the outcome was written as; the history outlives the answer.
    campaign_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("campaigns.id", ondelete="SET NULL")
    )


class AuditEntry(Base):
    """One admin action: who did what to what, when. Written by the service functions.

    Actions: ``key.create``, ``key.revoke``, ``device.provision``,
    ``device.config``, ``farm.create``, ``farm.delete``, ``field.create``,
    ``field.delete``. ``actor`` is the key's label (name and id) or
    ``cli:<user>``; ``detail`` never holds a secret.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    detail: Mapped[str | None] = mapped_column(Text)
