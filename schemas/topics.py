"""Topic names and keys: the one place they are spelled."""

from __future__ import annotations

COST_EVENTS = "spendfuse.cost-events"
COST_EVENTS_DLQ = "spendfuse.cost-events.dlq"
ALERTS = "spendfuse.alerts"
CONTROL = "spendfuse.control"
TENANT_SPEND = "spendfuse.tenant-spend"  # accepted events re-keyed by tenant (tenant stage)
COST_ROLLUPS = "spendfuse.cost-rollups"  # hourly cost rollups (schemas.rollup), read by reports
OUTCOMES = "spendfuse.outcomes"  # business outcome events (schemas.outcome), keyed by use case

ALL_TOPICS = (COST_EVENTS, COST_EVENTS_DLQ, ALERTS, CONTROL, TENANT_SPEND, COST_ROLLUPS, OUTCOMES)
PARTITIONED_TOPICS = frozenset({COST_EVENTS, TENANT_SPEND, OUTCOMES})
"""Created with ``SPENDFUSE_PARTITIONS`` partitions: outcomes like cost events, so a use case's
outcomes land on the partition (and worker) that holds its spend."""
COMPACTED_TOPICS = frozenset({CONTROL})
ROLLUP_RETENTION_MS = 400 * 24 * 3600 * 1000
"""Rollups are kept 400 days (a year and a quarter, for quarterly and year-on-year reports),
and compacted by rollup key: a record published again for the same hour and attribution
carries the full totals and replaces the earlier one."""
TOPIC_CONFIGS: dict[str, dict[str, str]] = {
    COST_ROLLUPS: {"cleanup.policy": "compact,delete", "retention.ms": str(ROLLUP_RETENTION_MS)},
}
"""Per-topic settings beyond the broker's defaults, applied when the topic is created."""


def cost_event_key(use_case_id: str) -> bytes:
    """Cost events are keyed by use case, so per-use-case state needs no repartition."""
    return use_case_id.encode()


def outcome_key(use_case_id: str) -> bytes:
    """Outcome events are keyed like cost events (by use case), so that one partition holds both
    the spend and the outcomes of a use case and its ledger needs no repartition."""
    return use_case_id.encode()
