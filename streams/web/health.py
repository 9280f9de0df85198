"""Liveness, readiness and consumer lag, read from Faust's consumer.

Readiness means "consuming": the worker has input partitions assigned and is not in the middle
of a rebalance. Lag per input partition is the highwater (log end offset) minus the committed
offset, refreshed by a timer into the ``spendfuse_consumer_lag`` gauge.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from spendfuse.schemas import topics
from spendfuse.streams.metrics import SpendfuseMetrics

log = logging.getLogger(__name__)

LAG_INTERVAL_S = 5.0


def input_assignment(app: faust.App) -> list[Any]:
    """The input topic's partitions assigned to this worker (empty before the first assign)."""
    try:
        assigned = app.consumer.assignment()
    except Exception:  # the consumer is not started yet
        return []
    return sorted(
        (tp for tp in assigned if tp.topic == topics.COST_EVENTS), key=lambda tp: tp.partition
    )


def readiness(app: faust.App) -> tuple[bool, dict[str, Any]]:
    """Ready when input partitions are assigned and no rebalance is under way."""
    assigned = input_assignment(app)
    rebalancing = bool(getattr(app, "rebalancing", False))
    ready = bool(assigned) and not rebalancing
    return ready, {
        "ready": ready,
        "assigned_partitions": [tp.partition for tp in assigned],
        "rebalancing": rebalancing,
    }


def partition_lags(app: faust.App) -> list[tuple[str, int, int]]:
    """``(topic, partition, lag)`` for each assigned input partition whose highwater is known."""
    committed = getattr(app.monitor, "tp_committed_offsets", None) or {}
    rows = []
    for tp in input_assignment(app):
        try:
            highwater = app.consumer.highwater(tp)
        except Exception:
            continue
        if highwater is None:
            continue
        # The group's committed offset as of assignment (Faust keeps it on the consumer) counts
        # too, so a worker that joined a group at the end of the topic reports no lag.
        known = (committed.get(tp), getattr(app.consumer, "_committed_offset", {}).get(tp))
        done = max((int(o) for o in known if o is not None), default=0)
        rows.append((tp.topic, tp.partition, max(int(highwater) - done, 0)))
    return rows


def register_lag_timer(app: faust.App, metrics: SpendfuseMetrics) -> None:
    @app.timer(interval=LAG_INTERVAL_S, name="update_consumer_lag")
    async def update_consumer_lag() -> None:
        try:
            metrics.set_lag(partition_lags(app))
        except Exception:  # a metric must never take the worker down
            log.exception("could not read consumer lag")
