"""The Faust application: topics, tables and agents wired around the pure pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import faust

from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas import topics
from spendfuse.settings import Settings
from spendfuse.streams.console import register_console_agent
from spendfuse.streams.dedup_table import FaustDedupStore
from spendfuse.streams.ingest import IngestHandler, register_ingest_agent


@dataclass
class SpendfuseApp:
    app: faust.App
    ingest: IngestHandler


def create_app(settings: Settings) -> SpendfuseApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.require_bootstrap()}",
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        producer_linger=0.005,
        table_cleanup_interval=60.0,
        stream_wait_empty=False,
    )

    def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
        return app.topic(
            name, key_serializer="raw", value_serializer="raw", partitions=partitions
        )

    topic_map = {
        "cost_events": raw_topic(topics.COST_EVENTS, settings.partitions),
        "dlq": raw_topic(topics.COST_EVENTS_DLQ),
        "alerts": raw_topic(topics.ALERTS),
        "control": raw_topic(topics.CONTROL),
    }
    states = app.Table("use-case-state", default=None, partitions=settings.partitions,
                       help="per-use-case rule state (plain data)")  # fmt: skip
    dedup = FaustDedupStore(app)
    pipeline = Pipeline(Engine.default(settings.spend_limit), settings.max_event_bytes)
    ingest = IngestHandler(pipeline, dedup, states, topic_map)
    register_ingest_agent(app, ingest)
    if settings.console_alerts and settings.slack_bot_token is None:
        register_console_agent(app, topic_map["alerts"])
    return SpendfuseApp(app, ingest)
