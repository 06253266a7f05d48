"""The registry database: farms, fields, devices, crops, seasons and their truth,
platforms and campaigns.

SQLAlchemy 2.x with Alembic migrations; SQLite by default (a file in the data
dir), PostgreSQL with ``AGRIMATCH_DATABASE_URL``. Typical use::

    engine = make_engine(database_url(settings))
    migrate(engine)
    with session_factory(engine).begin() as session:
        upsert_scenario(session, load_scenario("garlic-glut"))
"""

from agrimatch.registry.db import (
    MIGRATIONS_DIR,
    RegistryError,
    current_revision,
    database_url,
    head_revision,
    make_engine,
    migrate,
    session_factory,
)
from agrimatch.registry.models import (
    Base,
    Campaign,
    CampaignSource,
    Crop,
    Device,
    DeviceKind,
    Farm,
    Field,
    Platform,
    Region,
    Season,
)
from agrimatch.registry.repository import (
    CampaignFacts,
    ScenarioCounts,
    SeasonTruth,
    device_ids,
    find_fields,
    get_device,
    get_field,
    list_campaigns,
    list_devices,
    list_seasons,
    record_campaign_outcome,
    record_campaigns,
    record_season_truth,
    seasons_with_truth,
    sync_crops,
    upsert_rows,
    upsert_scenario,
)

__all__ = [
    "MIGRATIONS_DIR",
    "Base",
    "Campaign",
    "CampaignFacts",
    "CampaignSource",
    "Crop",
    "Device",
    "DeviceKind",
    "Farm",
    "Field",
    "Platform",
    "Region",
    "RegistryError",
    "ScenarioCounts",
    "Season",
    "SeasonTruth",
    "current_revision",
    "database_url",
    "device_ids",
    "find_fields",
    "get_device",
    "get_field",
    "head_revision",
    "list_campaigns",
    "list_devices",
    "list_seasons",
    "make_engine",
    "migrate",
    "record_campaign_outcome",
    "record_campaigns",
    "record_season_truth",
    "seasons_with_truth",
    "session_factory",
    "sync_crops",
    "upsert_rows",
    "upsert_scenario",
]
