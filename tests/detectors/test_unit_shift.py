"""``unit_shift``: the sequential test the unit-cost and token watches run, call by call."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from spendfuse.detectors import create
from spendfuse.detectors.spend_signals import add_event
from spendfuse.detectors.unit_shift import UnitShift
from spendfuse.schemas.cost_event import CostEvent
from tests.support.events import make_event

T0 = datetime(2026, 11, 3, tzinfo=UTC)


def _calls(n: int, seed: int, shift_at: int | None = None, factor: float = 1.0) -> list[dict]:
    """One call per point, a cent with a lognormal scatter of 0.45; ``factor`` from ``shift_at``."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        x = 0.01 * math.exp(rng.gauss(0.0, 0.45))
        if shift_at is not None and i >= shift_at:
            x *= factor
        out.append({"t": T0 + timedelta(seconds=30 * i), "value": x})
    return out


def _first_alarm(det: UnitShift, points: list[dict]) -> int | None:
    for i, x in enumerate(points):
        score = det.score_one(x)
        det.learn_one(x)
        if score >= 0.5:
            return i
    return None


def test_twice_the_unit_cost_alarms_within_twenty_calls() -> None:
    for seed in range(10):
        det = create("unit_shift")
        assert isinstance(det, UnitShift)
        at = _first_alarm(det, _calls(700, seed, shift_at=600, factor=2.0))
        assert at is not None and 600 <= at < 620, (seed, at)


def test_a_rise_under_the_tests_midpoint_never_alarms() -> None:
    det = create("unit_shift")
    assert _first_alarm(det, _calls(3000, 1, shift_at=300, factor=1.25)) is None


def test_one_outlier_call_does_not_alarm() -> None:
    det = create("unit_shift")
    points = _calls(400, 2)
    points[350]["value"] *= 50.0
    assert _first_alarm(det, points) is None


def test_a_bucket_of_calls_counts_each_call() -> None:
    """A minute of five calls at twice the level is more evidence than one such call."""
    det = create("unit_shift")
    for x in _calls(300, 3):
        det.learn_one(x)
    y = math.log(0.02)
    one = det.score_one({"t": T0, "value": 0.02, "n": 1, "log_mean": y})
    five = det.score_one({"t": T0, "value": 0.02, "n": 5, "log_mean": y})
    assert 0.0 < one < five
    assert det.expected({"t": T0}) == pytest.approx(0.01 * math.exp(0.45**2 / 2), rel=0.15)


def test_a_lasting_shift_is_adopted_as_the_new_normal() -> None:
    det = create("unit_shift", adopt_calls=200)
    points = _calls(1200, 4, shift_at=300, factor=3.0)
    scores = []
    for x in points:
        scores.append(det.score_one(x))
        det.learn_one(x)
    assert max(scores[300:320]) >= 0.5  # the shift alarms...
    assert max(scores[700:]) < 0.5  # ...and, adopted, stops alarming
    assert det.expected({"t": T0}) > 0.02


def test_a_bucket_counts_task_starts_and_the_mean_log_value_of_its_calls() -> None:
    """Three tasks: a 3-step agent (one step retried) and two calls that name no steps; a tool
    call is no model call. Tasks: 3; the unit signals' calls: 6 (mean log cost over them)."""
    costs = [0.01, 0.02, 0.02, 0.04, 0.01, 0.03]
    raws = [
        make_event("u", cost=costs[0], trace_id="a", step_number=1),
        make_event("u", cost=costs[1], trace_id="a", step_number=2),
        make_event("u", cost=costs[2], trace_id="a", step_number=2, is_retry=True),
        make_event("u", cost=costs[3], trace_id="a", step_number=3),
        make_event("u", cost=0.002, trace_id="a", step_number=3, component="tool_call"),
        make_event("u", cost=costs[4]),
        make_event("u", cost=costs[5]),
    ]
    state: dict = {}
    for k, raw in enumerate(raws):
        add_event(state, CostEvent.model_validate(raw | {"event_time": _at(k)}), 60, 1)
    closed = add_event(
        state, CostEvent.model_validate(make_event("u") | {"event_time": _at(90)}), 60, 1
    )
    assert len(closed) == 1
    bucket = closed[0]
    assert bucket.values["tasks"] == 3 and bucket.values["calls"] == 6
    n, log_mean = bucket.per_call["cost_per_call_usd"]
    assert n == 6 and log_mean == pytest.approx(sum(math.log(c) for c in costs) / 6)


def _at(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
