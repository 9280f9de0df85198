"""Settings, from the environment (``SPENDFUSE_*``) or a ``.env`` file, with embedded defaults.

Secrets are ``SecretStr``: they never appear in a repr, a log line or :meth:`Settings.masked`.
``KAFKA_BOOTSTRAP_SERVERS`` is honoured too, as most Kafka tooling sets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from spendfuse.rules.spend_limit import SpendLimitConfig
from spendfuse.schemas.codec import DEFAULT_MAX_EVENT_BYTES


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPENDFUSE_",
        env_file=".env",
        env_file_encoding="utf-8",
        env_nested_delimiter="__",
        populate_by_name=True,
        extra="ignore",
    )

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices("SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka to use; unset means `spendfuse run` starts a local broker.",
    )
    app_id: str = "spendfuse"
    partitions: int = Field(default=4, gt=0, description="Partitions of the input topic.")
    replication_factor: int = Field(default=1, gt=0)
    data_dir: Path = Path(".spendfuse")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_enabled: bool = True
    log_level: str = "warn"
    max_event_bytes: int = Field(default=DEFAULT_MAX_EVENT_BYTES, gt=0)
    spend_limit: SpendLimitConfig = Field(default_factory=SpendLimitConfig)
    slack_bot_token: SecretStr | None = None
    console_alerts: bool = Field(
        default=True, description="Print alerts to the console (always, when no Slack token)."
    )

    def require_bootstrap(self) -> str:
        if not self.bootstrap_servers:
            raise RuntimeError(
                "no Kafka configured: set SPENDFUSE_BOOTSTRAP_SERVERS (or KAFKA_BOOTSTRAP_SERVERS),"
                " or use `spendfuse run`, which starts a local broker"
            )
        return self.bootstrap_servers

    def masked(self) -> dict[str, Any]:
        """A dump safe to log: secrets shown as ``**********``."""
        return self.model_dump(mode="json")
