"""The gateway client's own settings (``SPENDFUSE_GATEWAY_*``), apart from the worker's.

A gateway does not load the worker's settings (they pull in the rule engine); it needs only the
broker, the topic and the keys it trusts. Verify keys are ``SecretStr``: an HMAC key is a secret.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from spendfuse.schemas.topics import CONTROL


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SPENDFUSE_GATEWAY_", env_file=".env", env_file_encoding="utf-8",
        populate_by_name=True, extra="ignore",
    )  # fmt: skip

    bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "SPENDFUSE_GATEWAY_BOOTSTRAP_SERVERS", "SPENDFUSE_BOOTSTRAP_SERVERS",
            "KAFKA_BOOTSTRAP_SERVERS",
        ),
    )  # fmt: skip
    topic: str = CONTROL
    verify_keys: SecretStr | None = Field(
        default=None, description="Comma-separated key specs (ed25519-pub:... or hmac-sha256:...)."
    )
    verify_keys_file: Path | None = Field(
        default=None, description="One key spec per line (`spendfuse keygen` writes it)."
    )
    load_timeout_s: float = Field(default=30.0, gt=0)

    def key_specs(self) -> list[str]:
        specs: list[str] = []
        if self.verify_keys is not None:
            specs += [s for s in self.verify_keys.get_secret_value().split(",") if s.strip()]
        if self.verify_keys_file is not None:
            specs += [s for s in self.verify_keys_file.read_text().splitlines() if s.strip()]
        return specs
