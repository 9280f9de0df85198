"""The Faust application: topics, tables and agents wired around the pure pipeline."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any

import faust

from spendfuse.control.keys import load_signer
from spendfuse.control.stamp import CommandSigner
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas import topics
from spendfuse.settings import Settings
from spendfuse.streams.commit_producer import CommitProducer
from spendfuse.streams.console import register_console_agent
from spendfuse.streams.dedup_table import FaustDedupStore
from spendfuse.streams.heap_trim import register_heap_trim
from spendfuse.streams.ingest import IngestHandler, register_ingest_agent
from spendfuse.streams.metrics import default_metrics
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.outcomes import OutcomeBoard, register_outcome_agent
from spendfuse.streams.rocksdb_memory import RocksDBMemory
from spendfuse.streams.rollups import RollupPublisher, register_outcome_refresh
from spendfuse.streams.rules_reload import register_rules_reload
from spendfuse.streams.state_cache import (
    DeferredChangelog,
    WriteBehindStates,
    attach_write_behind,
)
from spendfuse.streams.tenant import register_tenant_agent, tenant_topic
from spendfuse.streams.web import attach_operator_web

OUTCOME_REFRESH_S = 2.0
"""How often the dashboard's and the gauges' outcome economics are recomputed."""


@dataclass
class SpendfuseApp:
    app: faust.App
    ingest: IngestHandler


def broker_credentials(settings: Settings) -> Any:
    """Faust's (aiokafka's) form of the worker's Kafka login (``SPENDFUSE_KAFKA_*``); ``None``
    for PLAINTEXT. The confluent-kafka clients get the same login from
    :meth:`Settings.kafka_client_config`."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    context = None
    if protocol.endswith("SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_location)
    if protocol == "SSL":
        return context
    password = settings.kafka_sasl_password
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=password.get_secret_value() if password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=context,
    )


def create_app(settings: Settings) -> SpendfuseApp:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.require_bootstrap()}",
        broker_credentials=broker_credentials(settings),
        store=settings.store,
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=settings.web_enabled,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        # Faust's own views would serve table data (per-use-case state), the cluster's layout
        # and internals to anyone reaching the port: only spendfuse's views are served
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=settings.commit_interval_s,
        broker_commit_every=settings.commit_every,
        table_standby_replicas=settings.table_standby_replicas,
        producer_linger=0.005,
        table_cleanup_interval=60.0,
        stream_wait_empty=False,
    )

    def raw_topic(name: str, partitions: int | None = None) -> faust.TopicT:
        return app.topic(name, key_serializer="raw", value_serializer="raw", partitions=partitions)

    topic_map = {
        "cost_events": raw_topic(topics.COST_EVENTS, settings.partitions),
        "dlq": raw_topic(topics.COST_EVENTS_DLQ),
        "alerts": raw_topic(topics.ALERTS),
        "control": raw_topic(topics.CONTROL),
        "rollups": raw_topic(topics.COST_ROLLUPS),
        "outcomes": raw_topic(topics.OUTCOMES, settings.partitions),
    }
    state_table = app.Table(
        "use-case-state",
        default=None,
        partitions=settings.partitions,
        help="per-use-case rule state (plain data)",
    )
    sink = CommitProducer(
        settings.require_bootstrap(),
        client_id=f"{settings.app_id}-commit",
        config=settings.kafka_client_config(),
    )
    changelog = DeferredChangelog(sink)  # ids and states: local stores first, then changelogs
    states = WriteBehindStates(
        state_table, changelog, settings.state_cache_max_keys, metrics=default_metrics()
    )
    dedup = FaustDedupStore(app, sink=changelog)
    metrics = default_metrics()
    metrics.state_max_bytes.set(settings.state_max_bytes)
    outbox = Outbox(sink, dead_letter_topic=topic_map["dlq"], metrics=metrics)
    pipeline = build_pipeline(settings)
    topic_map["tenant_spend"] = tenant_topic(app, settings.partitions)
    signer = CommandSigner(
        load_signer(
            settings.control_signing_key,
            settings.control_signing_key_file,
            settings.data_dir / "keys",
        )
    )
    observer = attach_operator_web(
        app, settings, topic_map, signer, rules=lambda: pipeline.engine.ruleset
    )
    outcome_board = OutcomeBoard(metrics, observer.dashboard)
    rollups = RollupPublisher(
        pipeline.rollups,
        topic_map["rollups"],
        outbox,
        states,
        on_rows=observer.rollups,
        on_state=outcome_board.update if settings.outcome_ledger else None,
    )
    ingest = IngestHandler(
        pipeline, dedup, states, topic_map, signer, observer, outbox, rollups=rollups
    )
    batching = {"batch_max": settings.batch_max_records, "batch_within_s": settings.batch_within_s}
    register_ingest_agent(app, ingest, **batching)
    register_outcome_agent(
        app, pipeline, topic_map, states, outbox, metrics, touched=rollups.touched, **batching
    )
    tenant_states = register_tenant_agent(
        app,
        pipeline,
        topic_map,
        signer,
        settings.partitions,
        outbox,
        sink=changelog,
        max_cached=settings.state_cache_max_keys,
        observer=observer,
        **batching,
    )
    # every table's RocksDB databases (all partitions) share one cache and memtable budget
    # (Faust's defaults: a 2 GiB cache and 3 x 64 MiB of memtables per table and partition)
    rocksdb_memory = RocksDBMemory.from_settings(settings, metrics)
    rocksdb_memory.bound_all(app)
    # at each commit: what the records decided (acknowledged), then the state that counted them
    # (with each use case's input-offset watermark), then their dedup ids, then memtables over
    # the budget flushed
    attach_write_behind(
        app,
        outbox,
        [states, dedup, tenant_states, rocksdb_memory],
        {topics.COST_EVENTS, topics.TENANT_SPEND, topics.OUTCOMES},
        sink,
        metrics,
        changelog,
        before=rollups.publish_open,  # open hours' rollups, acknowledged before their states
    )
    register_outcome_refresh(app, rollups, OUTCOME_REFRESH_S)

    @app.on_partitions_revoked.connect
    async def forget_outcomes(_app: Any, revoked: set[Any], **_kw: Any) -> None:
        # their new owner reports those use cases' outcome economics now
        outcome_board.drop_partitions(
            {tp.partition for tp in revoked if tp.topic in (topics.COST_EVENTS, topics.OUTCOMES)}
        )

    register_rules_reload(app, pipeline, settings)
    register_heap_trim(app, settings.malloc_trim_s, metrics)
    if settings.console_alerts:  # beside Slack too: a token does not turn the console off
        register_console_agent(app, topic_map["alerts"])
    return SpendfuseApp(app, ingest)
