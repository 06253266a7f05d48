"""One settings object for the whole program (env prefix ``AGRIMATCH_``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_MASK = "********"
# Registry databases agrimatch installs a driver for (SQLAlchemy backend names).
DATABASE_BACKENDS = ("sqlite", "postgresql")
_DATABASE_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "postgresql+psycopg": "postgresql",
}


class SettingsError(ValueError):
    """Settings could not be loaded; the message names the offending variable."""


class Settings(BaseSettings):
    """Effective configuration, read from ``AGRIMATCH_*`` variables and ``.env``.

    Unset ``mqtt_url`` / ``influx_url`` select the embedded broker and store.
    """

    model_config = SettingsConfigDict(
        env_prefix="AGRIMATCH_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
    )

    mqtt_url: SecretStr | None = Field(
        default=None,
        description="Broker URL, mqtt://user:pass@host:1883 or mqtts:// for TLS; unset: embedded",
    )
    mqtt_ca_file: Path | None = Field(default=None, description="CA bundle for mqtts://")
    mqtt_client_id: str = Field(default="agrimatch-ingest", description="Ingest's MQTT client id")
    mqtt_protocol: str = Field(default="5", description="MQTT protocol: 5 or 3.1.1")
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600)

    influx_url: str | None = Field(
        default=None, description="InfluxDB base URL (v1-compatible API); unset: embedded store"
    )
    influx_db: str = Field(
        default="agrimatch", description="InfluxDB database (or DBRP-mapped bucket)"
    )
    influx_token: SecretStr | None = Field(default=None, description="Token for InfluxDB 2.x/3.x")
    influx_username: str | None = Field(default=None, description="User for InfluxDB 1.x")
    influx_password: SecretStr | None = Field(default=None, description="Password for InfluxDB 1.x")
    influx_timeout_s: float = Field(default=10.0, gt=0)

    data_dir: Path = Field(default=Path("data"), description="Embedded store and local state")
    database_url: SecretStr | None = Field(
        default=None,
        description="Registry database (SQLAlchemy URL); unset: SQLite in the data dir",
    )

    ingest_batch_size: int = Field(default=2000, ge=1, le=50_000)
    ingest_linger_ms: int = Field(default=200, ge=0, le=60_000)
    ingest_max_inflight: int = Field(
        default=10_000, ge=1, le=65_535, description="Unacknowledged messages the broker may send"
    )
    ingest_max_future_s: float = Field(default=300.0, ge=0)
    ingest_max_age_days: float = Field(default=90.0, gt=0)
    ingest_retry_initial_s: float = Field(default=0.2, gt=0)
    ingest_retry_max_s: float = Field(default=10.0, gt=0)
    ingest_stats_interval_s: float = Field(default=30.0, gt=0)
    ingest_connect_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Ingest exits 1 if its first broker connection fails for this long",
    )
    ingest_session_expiry_s: int = Field(
        default=3 * 24 * 3600,
        ge=60,
        le=2**32 - 2,
        description="How long the broker keeps ingest's session (and queue) after it leaves",
    )
    ingest_metrics_port: int | None = Field(
        default=None, ge=1, le=65_535, description="Prometheus metrics port of ingest; unset: off"
    )
    ingest_metrics_host: str = Field(
        default="127.0.0.1", description="Address the ingest metrics port binds (0.0.0.0: all)"
    )
    ingest_subscription: Literal["plain", "shared"] = Field(
        default="plain",
        description="plain: one ingest replica on agrimatch/v1/+/+/+/telemetry (the broker "
        "keeps queueing for it across its own restart); shared: $share/ingest/... for N "
        "replicas splitting the load (Mosquitto 2.0 drops packs published between its "
        "restart and the replicas' return: docs/reliability.md)",
    )
    ingest_check_place: bool = Field(
        default=True,
        description="Dead-letter telemetry of devices the registry lacks (unknown_device) "
        "or has on another farm/field (wrong_place); reads the registry "
        "(AGRIMATCH_DATABASE_URL), cached per device; `agrimatch sim` registers its fleet",
    )
    ingest_place_cache_s: float = Field(
        default=60.0, gt=0, le=86_400, description="How long ingest trusts a registry answer"
    )

    api_host: str = Field(default="127.0.0.1", description="Address `agrimatch serve` binds")
    api_port: int = Field(default=8080, ge=1, le=65_535, description="Port `agrimatch serve` binds")
    # NoDecode: a plain comma-separated list in the environment, not only JSON.
    api_cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API (comma-separated); empty: none",
    )
    api_max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, le=64 * 1024 * 1024, description="Largest request body"
    )
    api_key_pepper: SecretStr | None = Field(
        default=None,
        description="Server secret mixed into every API key hash; changing it revokes all keys",
    )
    api_store_wait_s: float = Field(
        default=2.0, ge=0, le=60, description="How long a request retries an unavailable store"
    )
    api_retry_after_s: int = Field(
        default=10, ge=1, le=3600, description="Retry-After of a 503 while the store is down"
    )
    api_device_rate_per_s: float = Field(
        default=1.0,
        ge=0,
        description="HTTP telemetry packs a device may post per second, on average; 0: no limit",
    )
    api_device_burst: int = Field(
        default=20, ge=1, description="Packs a device may post at once above its rate (a backlog)"
    )

    forecast_cluster: str | None = Field(
        default=None,
        description="Where the forecast's per-field and demand stages run: unset, this "
        "process; 'local', a Dask LocalCluster of this machine's cores; or a Dask scheduler "
        "such as tcp://host:8786",
    )

    clock_speed: float = Field(default=1.0, gt=0, description="Simulated seconds per real second")
    clock_start: datetime | None = Field(
        default=None, description="Simulated time at start (ISO 8601); unset: now"
    )

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        # Messages never quote the URL or a part of it: a password cut short by an
        # unencoded "#", "/" or "?" would otherwise be echoed as a "port" or a "path".
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://[user:pass@]host[:port] or mqtts://...")
        if parts.query or parts.fragment or parts.path not in ("", "/") or not _port_ok(parts):
            raise ValueError(
                "must look like mqtt://[user:pass@]host[:port]: a non-numeric port, or a path, "
                "query or fragment; percent-encode #, /, ?, @ and : in the user or password "
                "(%23 %2F %3F %40 %3A)"
            )
        return value

    @field_validator("influx_url")
    @classmethod
    def _check_influx_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or not _port_ok(parts):
            raise ValueError(
                "must look like http://host:8086 or https://... (percent-encode #, /, ?, @ "
                "and : in a user or password; or use AGRIMATCH_INFLUX_USERNAME/_PASSWORD)"
            )
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        text = value.get_secret_value()
        scheme = text.partition("://")[0].lower() if "://" in text else ""
        if scheme not in _DATABASE_DRIVERS:
            # Only the scheme is shown: the rest of the URL may hold a password.
            shown = f"{scheme}://" if scheme and len(scheme) < 40 else "that URL"
            raise ValueError(
                f"the registry runs on PostgreSQL or SQLite, not {shown}: use "
                "postgresql://user:pass@host/agrimatch or sqlite:///path/registry.sqlite3, "
                "or unset it for SQLite in AGRIMATCH_DATA_DIR"
            )
        return value

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("api_cors_origins")
    @classmethod
    def _check_origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            parts = urlsplit(origin)
            if origin != "*" and (parts.scheme not in ("http", "https") or not parts.hostname):
                raise ValueError(f"origin {origin!r} must look like https://host[:port] or *")
        return [origin.rstrip("/") for origin in value]

    @field_validator("mqtt_protocol")
    @classmethod
    def _check_protocol(cls, value: str) -> str:
        if value not in ("5", "3.1.1"):
            raise ValueError("must be 5 or 3.1.1")
        return value

    @field_validator("forecast_cluster")
    @classmethod
    def _check_forecast_cluster(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if value == "local":
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or not _port_ok(parts):
            raise ValueError("must be local or a Dask scheduler address like tcp://host:8786")
        return value

    @field_validator("influx_db", "mqtt_client_id")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values with every secret masked.

        Secret fields show as a mask; URLs (secret or not) keep everything but
        their password, which may sit in any of them (``http://admin:pw@host``).
        """
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                out[name] = redact_url(secret) if name.endswith("_url") else SECRET_MASK
            elif isinstance(value, str) and name.endswith("_url"):
                out[name] = redact_url(value)
            elif value is None:
                out[name] = None
            else:
                out[name] = str(value) if isinstance(value, Path | datetime) else value
        return out

    @property
    def mqtt_embedded(self) -> bool:
        return self.mqtt_url is None

    @property
    def influx_embedded(self) -> bool:
        return self.influx_url is None

    @property
    def influx_url_display(self) -> str | None:
        """``influx_url`` for messages and logs: its password masked."""
        return None if self.influx_url is None else redact_url(self.influx_url)

    def ensure_data_dir(self) -> Path:
        """Create the data dir if needed and return it; :class:`SettingsError` (one line,
        naming AGRIMATCH_DATA_DIR) if it cannot be created or written."""
        path = self.data_dir
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".agrimatch-write-check"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise SettingsError(data_dir_error(path, why)) from None
        return path


def data_dir_error(path: Path, why: str) -> str:
    """The one line that says the data dir is unusable and what to do."""
    return (
        f"AGRIMATCH_DATA_DIR={path} cannot be used ({why}): set AGRIMATCH_DATA_DIR to a "
        "directory agrimatch may create and write"
    )


def _port_ok(parts: SplitResult) -> bool:
    try:
        parts.port  # noqa: B018 - raises on a non-numeric port
    except ValueError:
        return False
    return True


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by a mask; anything unparsable masked whole."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = f"{parts.username}:{SECRET_MASK}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
    except ValueError:
        return SECRET_MASK
    return parts._replace(netloc=netloc).geturl()


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation errors into one message per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            # Only pydantic's message, never err["input"]: the value may be a secret.
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"AGRIMATCH_{field.upper()}: {message}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
