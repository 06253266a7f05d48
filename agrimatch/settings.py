"""One settings object for the whole program (env prefix ``AGRIMATCH_``)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

SECRET_MASK = "********"


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

    clock_speed: float = Field(default=1.0, gt=0, description="Simulated seconds per real second")
    clock_start: datetime | None = Field(
        default=None, description="Simulated time at start (ISO 8601); unset: now"
    )

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        parts = urlsplit(value.get_secret_value())
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("must look like mqtt://[user:pass@]host[:port] or mqtts://...")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError as exc:
            raise ValueError(f"bad port: {exc}") from None
        return value

    @field_validator("influx_url")
    @classmethod
    def _check_influx_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must look like http://host:8086 or https://...")
        return value.rstrip("/")

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

    @field_validator("influx_db", "mqtt_client_id")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    def masked(self) -> dict[str, Any]:
        """Effective settings as plain values with every secret masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                secret = value.get_secret_value()
                out[name] = _mask_url(secret) if name.endswith("_url") else SECRET_MASK
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


def _mask_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:{SECRET_MASK}@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc).geturl()


def load_settings(**overrides: Any) -> Settings:
    """Load settings, turning validation errors into one message per variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "?"
            problems.append(f"AGRIMATCH_{field.upper()}: {err['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
