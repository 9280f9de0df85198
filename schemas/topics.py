"""Topic names and keys: the one place they are spelled."""

from __future__ import annotations

COST_EVENTS = "spendfuse.cost-events"
COST_EVENTS_DLQ = "spendfuse.cost-events.dlq"
ALERTS = "spendfuse.alerts"
CONTROL = "spendfuse.control"
TENANT_SPEND = "spendfuse.tenant-spend"  # accepted events re-keyed by tenant (tenant stage)

ALL_TOPICS = (COST_EVENTS, COST_EVENTS_DLQ, ALERTS, CONTROL, TENANT_SPEND)
PARTITIONED_TOPICS = frozenset({COST_EVENTS, TENANT_SPEND})
COMPACTED_TOPICS = frozenset({CONTROL})


def cost_event_key(use_case_id: str) -> bytes:
    """Cost events are keyed by use case, so per-use-case state needs no repartition."""
    return use_case_id.encode()
