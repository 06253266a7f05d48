"""What the app's lifespan opens once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from agrimatch.clock import Clock
from agrimatch.settings import Settings
from agrimatch.store import TelemetryStore
from api.broker import ConfigPublisher
from api.lookups import Lookups
from api.metrics import ApiMetrics
from api.ratelimit import TokenBuckets
from api.telemetry import HttpTelemetry, RecentDeadLetters
from forecasting.service import ForecastService


@dataclass(frozen=True)
class ApiContext:
    """The app's services; ``publisher`` is None when no broker is configured.

    ``forecasts`` runs and reads forecasts over the same store and registry,
    with its models in ``settings.data_dir / "models"`` (as the CLI's).
    """

    settings: Settings
    store: TelemetryStore
    sessions: sessionmaker[Session]
    clock: Clock
    telemetry: HttpTelemetry
    dead_letters: RecentDeadLetters
    publisher: ConfigPublisher | None
    key_pepper: bytes
    metrics: ApiMetrics
    forecasts: ForecastService
    lookups: Lookups
    device_rates: TokenBuckets
