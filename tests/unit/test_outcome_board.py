"""The outcome board: worker-wide outcome gauges over the use cases held, bounded three ways.

It used to keep a view of every use case it had ever seen (never dropped on a rebalance, never
aged) and summed all of them again at every update.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.finops.outcomes import OutcomeLedger
from spendfuse.pipeline import OUTCOMES_KEY
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.outcome import OutcomeEvent
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.outcomes import OutcomeBoard
from tests.support.events import make_event

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


def state(use_case: str, usd: float, at: datetime, value: float | None = None) -> dict:
    """A use case's state whose ledger holds one $``usd`` event and its successful outcome."""
    ledger = OutcomeLedger(retention=timedelta(days=1))
    oid = f"o-{use_case}-{at.timestamp()}"
    ledger.add_cost(
        parse_cost_event_obj(
            make_event(use_case, cost=usd, at=at, business_outcome_id=oid, cost_event_id=oid)
        )
    )
    ledger.add_outcome(
        OutcomeEvent.model_validate(
            {
                "schema_version": 1,
                "outcome_event_id": f"e-{oid}",
                "event_time": at.isoformat(),
                "tenant_id": "t",
                "use_case_id": use_case,
                "business_outcome_id": oid,
                "status": "success",
                "value_usd": value,
            }
        )
    )
    ledger.data["wm_ms"] = int(
        at.timestamp() * 1000
    )  # the newest event time, as the pipeline keeps it
    return {OUTCOMES_KEY: ledger.data}


def gauges(metrics: SpendfuseMetrics) -> tuple[float, float, float]:
    return (
        metrics.outcome_spend._value.get(),
        metrics.outcome_successes._value.get(),
        metrics.outcome_roi._value.get(),
    )


def test_totals_follow_updates_and_replacements() -> None:
    metrics = SpendfuseMetrics()
    board = OutcomeBoard(metrics)
    board.update("a", state("a", 2.0, T0, value=5.0), 0)
    board.update("b", state("b", 3.0, T0), 1)
    assert gauges(metrics) == pytest.approx((5.0, 2.0, (5.0 - 2.0) / 2.0))
    board.update("a", state("a", 1.0, T0, value=5.0), 0)  # a's view replaced, not added
    assert gauges(metrics) == pytest.approx((4.0, 2.0, 4.0))


def test_a_revoked_partitions_use_cases_are_dropped() -> None:
    metrics = SpendfuseMetrics()
    board = OutcomeBoard(metrics)
    board.update("a", state("a", 2.0, T0), 0)
    board.update("b", state("b", 3.0, T0), 1)
    board.drop_partitions({0})
    assert set(board.views) == {"b"}
    assert gauges(metrics)[:2] == pytest.approx((3.0, 1.0))
    assert math.isnan(gauges(metrics)[2])  # no value left: ROI unknown


def test_a_window_a_whole_retention_behind_the_newest_is_dropped() -> None:
    metrics = SpendfuseMetrics()
    board = OutcomeBoard(metrics)
    board.update("old", state("old", 2.0, T0), 0)
    board.update("mid", state("mid", 3.0, T0 + timedelta(hours=20)), 0)
    assert set(board.views) == {"old", "mid"}  # their 1-day windows still overlap
    board.update("new", state("new", 4.0, T0 + timedelta(hours=25)), 0)
    assert set(board.views) == {"mid", "new"}
    assert gauges(metrics)[:2] == pytest.approx((7.0, 2.0))


def test_at_most_max_views_the_least_recently_updated_go_first() -> None:
    board = OutcomeBoard(SpendfuseMetrics(), max_views=3)
    for i in range(5):
        board.update(f"uc-{i}", state(f"uc-{i}", 1.0, T0), 0)
    board.update("uc-2", state("uc-2", 1.0, T0), 0)
    board.update("uc-5", state("uc-5", 1.0, T0), 0)
    assert list(board.views) == ["uc-4", "uc-2", "uc-5"]


def test_max_views_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_views must be at least 1, got 0"):
        OutcomeBoard(max_views=0)
