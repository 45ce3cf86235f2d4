"""Settings: one validated object, built by whoever starts Jornada (CLI, tests), never at import."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting is an environment variable ``JORNADA_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="JORNADA_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///var/jornada.db",
        description="SQLAlchemy URL; sqlite:///path or postgresql://user@host/db",
    )
    host: str = "127.0.0.1"
    port: int = 8000
    default_timezone: str = Field(
        default="America/Sao_Paulo", description="Time zone of a new workspace"
    )
    default_currency: str = Field(default="BRL", description="Currency of a new workspace")
    max_message_bytes: int = Field(default=32 * 1024, description="Segment's limit per message")
    max_batch_bytes: int = Field(default=500 * 1024, description="Segment's limit per batch")
    sqlite_synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = Field(
        default="FULL",
        description="SQLite PRAGMA synchronous; FULL makes an acknowledged event survive power loss",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Encrypts provider secrets at rest and signs tracking and unsubscribe links; "
            "unset: generated once into secret.key beside the SQLite database (var/ otherwise)"
        ),
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where recipients reach this server: open pixel, click and unsubscribe links",
    )
    delivery_processes: bool = Field(
        default=True,
        description=(
            "Send e-mail over SMTP from child processes (one per connection), so SMTP replies "
            "never wait for the scheduler; off, the worker's threads send it"
        ),
    )
    webhooks_allow_private: bool = Field(
        default=False,
        description=(
            "Let flows' webhooks call loopback, private and link-local addresses "
            "(a receiver on the same network); off, such a URL fails instead of being called"
        ),
    )


def load_settings() -> Settings:
    """Settings from the environment; a bad value names its variable (``JORNADA_…``)."""
    from jornada.errors import InvalidInput

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = "JORNADA_" + "_".join(str(p) for p in first["loc"]).upper()
        raise InvalidInput(f"{name}: {first['msg']}", field=name) from exc
