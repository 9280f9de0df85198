"""The gateway client's own settings (``SPENDFUSE_GATEWAY_*``), apart from the worker's.

A gateway does not load the worker's settings (they pull in the rule engine); it needs only the
broker, the topic and the keys it trusts. Verify keys are ``SecretStr``: an HMAC key is a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from spendfuse.kafka_auth import KafkaAuthSettings
from spendfuse.schemas.topics import CONTROL


class GatewaySettings(BaseSettings, KafkaAuthSettings):
    """The gateway logs in to Kafka as its own principal: ``SPENDFUSE_GATEWAY_KAFKA_SASL_*``."""

    model_config = SettingsConfigDict(
        env_prefix="SPENDFUSE_GATEWAY_",
        env_file=".env",
        env_file_encoding="utf-8",
        populate_by_name=True,
        extra="ignore",
    )

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SPENDFUSE_GATEWAY_BOOTSTRAP_SERVERS",
            "SPENDFUSE_BOOTSTRAP_SERVERS",
            "KAFKA_BOOTSTRAP_SERVERS",
        ),
    )
    topic: str = CONTROL
    verify_keys: SecretStr | None = Field(
        default=None, description="Comma-separated key specs (ed25519-pub:... or hmac-sha256:...)."
    )
    verify_keys_file: Path | None = Field(
        default=None, description="One key spec per line (`spendfuse keygen` writes it)."
    )
    signature_algorithm: Literal["ed25519", "hmac-sha256"] = Field(
        default="ed25519", description="The one algorithm records may be signed with (pinned)."
    )
    load_timeout_s: float = Field(default=30.0, gt=0)
    fail_mode: Literal["open", "closed", "last_known_good"] = Field(
        default="last_known_good",
        description="What decide answers while the state is not loaded or stale: open = allow, "
        "closed = deny, last_known_good = the last loaded state up to max_staleness_s, then allow.",
    )
    stale_after_s: float = Field(
        default=30.0, gt=0, description="Not ready once the broker has not answered this long."
    )
    max_staleness_s: float = Field(
        default=900.0, gt=0, description="last_known_good: the oldest state still applied."
    )
    max_publish_delay_s: float = Field(
        default=900.0,
        gt=0,
        description="A record the broker appended longer than this after it was signed is an old "
        "record sent again, refused as late (needs LogAppendTime on the control topic).",
    )
    default_risk_tier: Literal["low", "medium", "high", "critical"] | None = Field(
        default=None,
        description="Risk tier of requests that state none. Unset: such requests are not known "
        "to be low-risk, so only risk-protection and operator commands act on them.",
    )

    def key_specs(self) -> list[str]:
        specs: list[str] = []
        if self.verify_keys is not None:
            specs += [s for s in self.verify_keys.get_secret_value().split(",") if s.strip()]
        if self.verify_keys_file is not None:
            specs += [s for s in self.verify_keys_file.read_text().splitlines() if s.strip()]
        return specs
