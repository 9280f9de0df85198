"""Settings, from the environment (``SPENDFUSE_*``) or a ``.env`` file, with embedded defaults.

Secrets are ``SecretStr``: they never appear in a repr, a log line or :meth:`Settings.masked`.
``KAFKA_BOOTSTRAP_SERVERS`` is honoured too, as most Kafka tooling sets it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from spendfuse.kafka_auth import KafkaAuthSettings
from spendfuse.rules.state_size import DEFAULT_MAX_STATE_BYTES
from spendfuse.schemas.codec import DEFAULT_MAX_EVENT_BYTES
from spendfuse.schemas.envelope import DEFAULT_MAX_RECORD_BYTES

LEGACY_RULE_SETTINGS = ("SPENDFUSE_SPEND_LIMIT__", "SPENDFUSE_ANOMALY__")


class DashboardSettings(BaseModel):
    """The worker's dashboard (``SPENDFUSE_DASHBOARD__*``)."""

    daily_budget_usd: float = Field(default=100.0, gt=0, description="Per use case, shown.")
    monthly_budget_usd: float = Field(default=2000.0, gt=0, description="Per use case, shown.")
    token: SecretStr | None = Field(
        default=None, description="Bearer token for writes (silence, lift); unset: read-only."
    )


class Settings(BaseSettings, KafkaAuthSettings):
    """Kafka login (``SPENDFUSE_KAFKA_SECURITY_PROTOCOL``, ``_SASL_MECHANISM``, ``_SASL_USERNAME``,
    ``_SASL_PASSWORD``) comes from :class:`~spendfuse.kafka_auth.KafkaAuthSettings`."""

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
    store: str = Field(
        default="rocksdb://",
        description="Where tables live: rocksdb:// (durable, fast recovery) or memory://.",
    )
    rocksdb_block_cache_mb: int = Field(
        default=64,
        gt=0,
        description="One LRU block cache for every table and partition of the worker: data, "
        "index and filter blocks.",
    )
    rocksdb_write_buffer_mb: int = Field(
        default=64,
        gt=0,
        description="All RocksDB memtables of the worker together: past it, the largest are "
        "flushed to disk at the next offset commit (each table and partition holds at most "
        "2 x 8 MiB of its own).",
    )
    malloc_trim_s: float = Field(
        default=60.0,
        ge=0,
        description="How often the worker hands the C allocator's free pages back to the system "
        "(glibc malloc_trim); 0: never.",
    )
    rules_dir: Path | None = Field(
        default=None, description="Rule files merged over the default pack; reloaded on change."
    )
    price_book_path: Path | None = Field(
        default=None,
        description="A YAML price book of internal and negotiated prices; the events it prices "
        "carry its pricing_version. Unset: producer costs, unit prices and the LLM catalog only.",
    )
    rules_default_pack: bool = Field(default=True, description="Run the shipped default pack.")
    rules_reload_s: float = Field(default=5.0, gt=0, description="How often rules_dir is polled.")
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    slack_bot_token: SecretStr | None = None
    console_alerts: bool = Field(
        default=True, description="Print alerts to the console, beside Slack when a token is set."
    )
    commit_interval_s: float = Field(
        default=0.5,
        gt=0,
        description="How often the worker commits input offsets. Alerts and commands leave at "
        "the commit that covers their events, so this bounds their added latency.",
    )
    table_standby_replicas: int = Field(
        default=1,
        ge=0,
        description="Standby copies of each table partition kept warm on other workers, so a "
        "worker that takes over a dead one's partitions has its state at once.",
    )
    state_cache_max_keys: int = Field(
        default=5_000,
        gt=0,
        description="Use cases (and tenants) whose live state a worker keeps in memory; colder "
        "ones are read back from RocksDB when their next event comes.",
    )
    state_max_bytes: int = Field(
        default=DEFAULT_MAX_STATE_BYTES,
        ge=16_384,
        le=900_000,
        description="Cap on one use case's or tenant's state as persisted (JSON bytes); over "
        "it the oldest outcome ids and open traces are trimmed in event-time order (counted in "
        "spendfuse_state_trimmed_total). Under Kafka's 1 MB record, so a state always commits.",
    )
    batch_max_records: int = Field(
        default=500, gt=0, description="Records an agent takes per batch (stream.take_events)."
    )
    batch_within_s: float = Field(
        default=0.02, gt=0, description="How long an agent waits to fill a batch."
    )
    max_record_bytes: int = Field(
        default=DEFAULT_MAX_RECORD_BYTES,
        gt=0,
        description="Largest input record (an envelope of events); one event is still capped "
        "by max_event_bytes.",
    )
    rollup_lateness_s: float = Field(
        default=300.0,
        ge=0,
        description="An hour's rollups are published once a use case's event time is this far "
        "past the hour's end.",
    )
    rollup_keep_h: float = Field(
        default=6.0,
        gt=0,
        description="Hours a closed hour's rollups stay in state, corrected and re-published "
        "for late events; later events go to a revision record.",
    )
    outcome_ledger: bool = Field(
        default=False,
        description="Keep an outcome ledger per use case (cost per successful outcome, ROI): "
        "its state grows with the outcome ids of the retention window.",
    )
    outcome_retention_h: float = Field(
        default=168.0,
        gt=0,
        description="How long an outcome id's spend and status are kept (event time): an "
        "outcome may arrive this late and still count.",
    )
    commit_every: int = Field(
        default=10_000, gt=0, description="Also commit after this many processed records."
    )
    control_signing_key: SecretStr | None = Field(
        default=None, description='"ed25519:<base64 seed>" or "hmac-sha256:<base64 key>".'
    )
    control_signing_key_file: Path | None = Field(
        default=None, description="A file holding the signing key spec (`spendfuse keygen`)."
    )
    slack_channel: str = Field(default="#ai-finops", description="Channel when no route matches.")
    slack_base_url: str = "https://slack.com/api/"
    notify_group_id: str = "spendfuse-notify"
    notify_metrics_port: int = Field(
        default=9466, ge=0, description="The notifier's /metrics port (0: not served)."
    )

    @model_validator(mode="after")
    def _no_second_rule_plane(self) -> Settings:
        """The spend-rate limit and the anomaly watches are rules in the rule files now; their old
        environment settings would be silently ignored, so they are refused with the fix."""
        legacy = sorted(k for k in os.environ if k.upper().startswith(LEGACY_RULE_SETTINGS))
        if legacy:
            raise ValueError(
                f"{', '.join(legacy)}: the spend-rate limit and the anomaly watches are rules in "
                "the rule files now, not settings. Put a rule of the same name (spend_rate_limit, "
                "spend_spike_anomaly, ...) in a file under SPENDFUSE_RULES_DIR to change it (see "
                "`spendfuse rules show spend_rate_limit` and the README's migration note), and "
                "unset these variables"
            )
        return self

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
