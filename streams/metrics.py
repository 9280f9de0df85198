"""Prometheus metrics of the worker: what flows in, how it ends, how fast, and what it decided.

Every metric lives in a registry owned by one :class:`SpendfuseMetrics`, not in
prometheus-client's global registry, so unit tests can make as many as they like and a worker
exposes exactly its own. Names follow Prometheus conventions (``spendfuse_*``, ``_total`` on
counters, base units in seconds). Labels are bounded: outcome, DLQ reason, rule, command kind,
topic and partition; never a tenant or use case (unbounded cardinality).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from spendfuse.dedup import DEDUP_WINDOW_S
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.command import ControlCommand

# Handling one record takes ~100 µs to a few ms; sends can add tens of ms under load.
_LATENCY_BUCKETS_S = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


LATE_AFTER_S = DEDUP_WINDOW_S
"""An accepted event decided this long after its event time is counted as late."""
AHEAD_AFTER_S = 3600
"""An accepted event whose time is this far ahead of the worker's clock is counted as ahead
(Kafka 4 brokers refuse record timestamps over an hour ahead by default, for the same reason)."""


def rule_of(command: ControlCommand) -> str:
    """The rule behind a command (``rule:<name>``), or ``operator`` for a person's command."""
    source, _, name = command.issued_by.partition(":")
    return name if source == "rule" and name else source or "unknown"


class SpendfuseMetrics:
    """The worker's metrics; the ingest handler and web views call the ``record_*`` methods."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_in = Counter(
            "spendfuse_events_in", "Records read from the input topic.", registry=r
        )
        self.events_accepted = Counter(
            "spendfuse_events_accepted", "Valid, new cost events counted.", registry=r
        )
        self.events_duplicate = Counter(
            "spendfuse_events_duplicate",
            "Events dropped as repeats of a cost_event_id.",
            registry=r,
        )
        self.events_dead_lettered = Counter(
            "spendfuse_events_dead_lettered",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=r,
        )
        self.events_late = Counter(
            "spendfuse_events_late",
            "Accepted events decided over 24 h (the dedup window) after their event time. "
            "They count (late spend is still spend), but a repeat that late may pass dedup.",
            registry=r,
        )
        self.events_ahead = Counter(
            "spendfuse_events_ahead",
            "Accepted events whose event time was over an hour ahead of the worker's clock: "
            "a producer clock or unit problem; they count in the windows of their event time.",
            registry=r,
        )
        self.events_rekeyed = Counter(
            "spendfuse_events_rekeyed",
            "Records re-published under their use case key.",
            registry=r,
        )
        self.spend_usd = Counter(
            "spendfuse_spend_usd", "Spend of accepted events, in USD.", registry=r
        )
        self.events_unpriced = Counter(
            "spendfuse_events_unpriced",
            "Accepted events nothing could price (no cost, unit price, price book or catalog "
            "entry): counted at $0 until priced, by component.",
            ["component"],
            registry=r,
        )
        self.processing_seconds = Histogram(
            "spendfuse_processing_seconds",
            "Wall time to handle one batch of input records: decode, decide, queue results.",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.detector_seconds = Histogram(
            "spendfuse_detector_seconds",
            "Wall time of the decision step per input record (dedup, pricing, rules and the "
            "detectors they run).",
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.alerts = Counter(
            "spendfuse_alerts",
            "Alerts published, by rule and status.",
            ["rule", "status"],
            registry=r,
        )
        self.commands = Counter(
            "spendfuse_commands",
            "Control commands published, by rule and kind.",
            ["rule", "kind"],
            registry=r,
        )
        self.worker_errors = Counter(
            "spendfuse_worker_errors",
            "Exceptions caught so the worker goes on, by stage: ingest / tenant (one record: "
            "dead-lettered with reason internal_error), commit (a step of the offset commit), "
            "changelog (a state or id record the producer refused), publish (a dead letter "
            "that could not be published), dashboard (a feed record not shown), rules_reload.",
            ["stage"],
            registry=r,
        )
        self.state_bytes = Histogram(
            "spendfuse_state_bytes",
            "Encoded size of each use-case or tenant state written at a commit.",
            buckets=(1024, 4096, 16384, 65536, 262144, 1048576),
            registry=r,
        )
        self.state_trimmed = Counter(
            "spendfuse_state_trimmed",
            "Entries trimmed from use-case or tenant states over SPENDFUSE_STATE_MAX_BYTES, "
            "by reason: outcome_ids / trace_ids (the oldest by event time), evidence (alert "
            "sample ids), over_cap (a state still over the cap with nothing left to trim).",
            ["reason"],
            registry=r,
        )
        self.state_measured_bytes = Histogram(
            "spendfuse_state_measured_bytes",
            "Size of a use-case or tenant state as persisted, each time the pipeline measures "
            "it against SPENDFUSE_STATE_MAX_BYTES (after trimming).",
            buckets=(4096, 16384, 65536, 131072, 262144, 524288, 1048576),
            registry=r,
        )
        self.state_max_bytes = Gauge(
            "spendfuse_state_max_bytes",
            "The cap on one state (SPENDFUSE_STATE_MAX_BYTES).",
            registry=r,
        )
        self.rocksdb_memory = Gauge(
            "spendfuse_rocksdb_memory_bytes",
            "RocksDB memory held at the last offset commit: the block cache every table and "
            "partition shares (with their index and filter blocks), and all memtables.",
            ["part"],
            registry=r,
        )
        self.rocksdb_memory_budget = Gauge(
            "spendfuse_rocksdb_memory_budget_bytes",
            "The budgets: SPENDFUSE_ROCKSDB_BLOCK_CACHE_MB (block_cache) and "
            "SPENDFUSE_ROCKSDB_WRITE_BUFFER_MB (memtables).",
            ["part"],
            registry=r,
        )
        self.rocksdb_memtable_flushes = Counter(
            "spendfuse_rocksdb_memtable_flushes",
            "Memtables flushed at a commit because all of them together passed their budget.",
            registry=r,
        )
        self.malloc_trims = Counter(
            "spendfuse_malloc_trims",
            "Times the worker handed the C allocator's free pages back (SPENDFUSE_MALLOC_TRIM_S).",
            registry=r,
        )
        self.consumer_lag = Gauge(
            "spendfuse_consumer_lag",
            "Records not yet processed (highwater - committed).",
            ["topic", "partition"],
            registry=r,
        )
        self.outcome_events = Counter(
            "spendfuse_outcome_events",
            "Outcome events handled, by status (success / resolved / failure), ignored (a "
            "repeat, or older than the outcome known or the ledger's retention), rekeyed, or "
            "off (valid, but SPENDFUSE_OUTCOME_LEDGER is false).",
            ["status"],
            registry=r,
        )
        self.outcome_spend = Gauge(
            "spendfuse_outcome_spend_usd",
            "Spend of the use cases with outcomes this worker holds, over each one's outcome "
            "window (SPENDFUSE_OUTCOME_RETENTION_H of event time).",
            registry=r,
        )
        self.outcome_successes = Gauge(
            "spendfuse_outcome_successes",
            "Successful outcomes (success or resolved) in the same windows.",
            registry=r,
        )
        self.cost_per_success = Gauge(
            "spendfuse_cost_per_success_usd",
            "Spend over successful outcomes in the same windows (NaN with no success).",
            registry=r,
        )
        self.outcome_roi = Gauge(
            "spendfuse_outcome_roi",
            "(value - spend) / spend over the use cases whose outcomes carry value_usd "
            "(NaN with none).",
            registry=r,
        )
        self.assigned_partitions = Gauge(
            "spendfuse_assigned_partitions",
            "Input partitions assigned to this worker.",
            registry=r,
        )

    def record_in(self) -> None:
        self.events_in.inc()

    def record_accepted(self, cost_usd: float) -> None:
        self.events_accepted.inc()
        self.spend_usd.inc(max(cost_usd, 0.0))

    def record_unpriced(self, component: str) -> None:
        self.events_unpriced.labels(component=component).inc()

    def record_event_time(self, event_time: datetime, now: datetime) -> None:
        """Count an accepted event as late or ahead of ``now`` (the worker's clock); metrics
        only, decisions never depend on the clock."""
        skew_s = (now - event_time).total_seconds()
        if skew_s > LATE_AFTER_S:
            self.events_late.inc()
        elif skew_s < -AHEAD_AFTER_S:
            self.events_ahead.inc()

    def record_duplicate(self) -> None:
        self.events_duplicate.inc()

    def record_dead_letter(self, reason: str) -> None:
        self.events_dead_lettered.labels(reason=reason).inc()

    def record_worker_error(self, stage: str) -> None:
        self.worker_errors.labels(stage=stage).inc()

    def record_state_bytes(self, size: int) -> None:
        self.state_bytes.observe(size)

    def record_state_trimmed(self, trimmed: dict[str, int]) -> None:
        for reason, count in trimmed.items():
            self.state_trimmed.labels(reason=reason).inc(count)

    def record_state_measured(self, size: int) -> None:
        self.state_measured_bytes.observe(size)

    def record_rekeyed(self) -> None:
        self.events_rekeyed.inc()

    def record_outcome(self, status: str) -> None:
        self.outcome_events.labels(status=status).inc()

    def set_outcome_totals(
        self, spend: float, successes: float, valued_spend: float, value: float
    ) -> None:
        """Worker-wide outcome economics: sums over each held use case's window
        (``ledger_view``); ``valued_spend`` and ``value`` over the windows carrying a value."""
        self.outcome_spend.set(spend)
        self.outcome_successes.set(successes)
        self.cost_per_success.set(spend / successes if successes else math.nan)
        self.outcome_roi.set((value - valued_spend) / valued_spend if valued_spend else math.nan)

    def record_alert(self, alert: Alert) -> None:
        self.alerts.labels(rule=alert.rule, status=alert.status).inc()

    def record_command(self, command: ControlCommand) -> None:
        self.commands.labels(rule=rule_of(command), kind=command.kind.value).inc()

    @contextmanager
    def time_processing(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.processing_seconds.observe(time.perf_counter() - started)

    @contextmanager
    def time_detectors(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.detector_seconds.observe(time.perf_counter() - started)

    def set_lag(self, lags: Iterable[tuple[str, int, int]]) -> None:
        """Replace the lag gauges with ``(topic, partition, lag)`` rows (revoked ones vanish)."""
        self.consumer_lag.clear()
        count = 0
        for topic, partition, lag in lags:
            self.consumer_lag.labels(topic=topic, partition=str(partition)).set(max(lag, 0))
            count += 1
        self.assigned_partitions.set(count)

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type, for ``/metrics``."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


_default: SpendfuseMetrics | None = None


def default_metrics() -> SpendfuseMetrics:
    """The process's metrics, shared by the worker's parts (ingest, Slack notifier, views)."""
    global _default
    if _default is None:
        _default = SpendfuseMetrics()
    return _default
