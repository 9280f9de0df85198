"""Session cost outliers: the quantile is right, runaways are flagged once, state is data."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pytest

from spendfuse.detectors import create
from spendfuse.detectors.session_outliers import SessionOutliers, SessionQuantile

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _sessions(n: int, seed: int, median: float = 0.04, sigma: float = 0.6):
    """``n`` normal sessions of 1-6 events, one starting every 20 s, each event 2 s apart."""
    rng = random.Random(seed)
    events = []
    for i in range(n):
        total = rng.lognormvariate(math.log(median), sigma)
        steps = rng.randint(1, 6)
        start = T0 + timedelta(seconds=20 * i)
        for k in range(steps):
            events.append((start + timedelta(seconds=2 * k), f"s{seed}-{i}", total / steps))
    events.sort(key=lambda e: e[0])
    return events


def _run(tracker: SessionOutliers, events) -> list:
    flags = []
    for t, trace, cost in events:
        flag = tracker.observe(trace, t, cost)
        if flag is not None:
            flags.append(flag)
    return flags


def test_learned_quantile_matches_the_empirical_p999() -> None:
    rng = np.random.default_rng(1)
    costs = rng.lognormal(math.log(0.04), 0.6, 20_000)
    det = SessionQuantile(q=0.999, half_life=100_000)
    for c in costs:
        det.learn_one({"t": 0, "value": float(c)})
    truth = float(np.quantile(costs, 0.999))
    assert det.threshold() == pytest.approx(truth, rel=0.08)
    assert det.score_one({"t": 0, "value": truth}) == pytest.approx(0.5, abs=0.03)
    assert det.score_one({"t": 0, "value": 10 * truth}) > det.score_one({"t": 0, "value": truth})
    assert det.score_one({"t": 0, "value": float(np.median(costs))}) < 0.2


def test_runaway_session_is_flagged_once_within_seconds_and_normal_ones_rarely() -> None:
    tracker = SessionOutliers(q=0.999, grace_period=500, min_cost_usd=0.05)
    assert _run(tracker, _sessions(1500, seed=1)[:20]) == []  # nothing before grace
    normal_flags = _run(tracker, _sessions(3000, seed=2))
    assert len(normal_flags) <= 10  # P99.9 of 3,000 sessions: ~3 expected
    limit = tracker.threshold()
    assert limit is not None and 0.1 < limit < 0.5
    # a runaway agent: $0.02 every 3 s on one trace
    start = T0 + timedelta(days=1)
    loop = [(start + timedelta(seconds=3 * k), "loop-1", 0.02) for k in range(200)]
    flags = _run(tracker, loop)
    assert [f.trace_id for f in flags] == ["loop-1"]
    flag = flags[0]
    assert flag.cost_usd > flag.threshold_usd == pytest.approx(limit, rel=0.05)
    assert flag.cost_usd - 0.02 <= flag.threshold_usd  # the very event that crossed it
    assert (flag.flagged_at - flag.started_at).total_seconds() <= 3 * (limit / 0.02 + 1)
    assert flag.q == 0.999 and flag.sessions_learned >= 3000


def test_flagged_session_does_not_teach_the_quantile_that_runaways_are_normal() -> None:
    tracker = SessionOutliers(grace_period=200)
    _run(tracker, _sessions(2000, seed=3))
    before = tracker.threshold()
    start = T0 + timedelta(days=1)
    for r in range(5):  # five runaways of $50 each, each finished by idleness
        at = start + timedelta(hours=r)
        _run(tracker, [(at + timedelta(seconds=k), f"loop-{r}", 1.0) for k in range(50)])
    tracker.observe("tick", start + timedelta(hours=6), 0.01)  # finishes the last one
    assert tracker.threshold() < 3 * before  # not taught that $50 sessions are normal
    at = start + timedelta(hours=7)
    flags = _run(tracker, [(at + timedelta(seconds=k), "loop-6", 1.0) for k in range(50)])
    assert [f.trace_id for f in flags] == ["loop-6"] and flags[0].cost_usd < 3


def test_never_flags_a_session_below_min_cost() -> None:
    tracker = SessionOutliers(grace_period=100, min_cost_usd=1.0)
    _run(tracker, _sessions(1000, seed=4, median=0.001))
    assert tracker.threshold() == 1.0
    start = T0 + timedelta(days=1)
    assert _run(tracker, [(start + timedelta(seconds=k), "x", 0.01) for k in range(90)]) == []
    assert tracker.observe("x", start + timedelta(seconds=91), 0.2) is not None


def test_quantile_follows_sessions_that_get_dearer() -> None:
    tracker = SessionOutliers(grace_period=100, half_life=1000)
    _run(tracker, _sessions(3000, seed=5, median=0.04))
    cheap = tracker.threshold()
    later = [(t + timedelta(days=2), tr + "b", c) for t, tr, c in _sessions(6000, 6, median=0.12)]
    _run(tracker, later)
    assert tracker.threshold() == pytest.approx(3 * cheap, rel=0.3)


def test_state_is_plain_data_bounded_and_restores_identically() -> None:
    tracker = SessionOutliers(grace_period=300, max_open=50)
    events = _sessions(4000, seed=7)
    half = len(events) // 2
    _run(tracker, events[:half])
    blob = orjson.dumps(tracker.to_state())
    restored = SessionOutliers.from_state(orjson.loads(blob))
    assert orjson.dumps(restored.to_state()) == blob
    rest = events[half:] + [(T0 + timedelta(days=3, seconds=k), "loop", 0.05) for k in range(40)]
    assert _run(restored, rest) == _run(tracker, rest)
    assert orjson.dumps(restored.to_state()) == orjson.dumps(tracker.to_state())
    # bounded: open sessions capped, histogram bins capped whatever the cost range
    for k in range(500):
        tracker.observe(f"burst-{k}", T0 + timedelta(days=4, milliseconds=k), 10.0 ** (k % 12 - 6))
    assert tracker.open_sessions <= 50
    assert len(tracker.to_state()["quantile"]["state"]["bins"]) <= 400


def test_registered_by_name() -> None:
    det = create({"name": "session_quantile", "params": {"q": 0.99}})
    assert isinstance(det, SessionQuantile) and det.q == 0.99
    with pytest.raises(ValueError, match="q"):
        create("session_quantile", q=1.0)


@pytest.mark.parametrize("half_life", [10, 5000])
def test_tracker_bound_at_every_event_keeps_the_state_a_restored_one_keeps(half_life) -> None:
    """The engine binds a tracker to its state at every event, and the learned quantile it
    saved stays in memory, updated in place; a tracker restored from the plain data at every
    event (a worker that just took the use case over) must keep byte for byte the same state,
    also across the histogram's rescaling (a short half-life rescales every ~3,300 sessions)."""
    params = {"grace_period": 50, "half_life": half_life, "max_open": 40}
    live_state: dict = {}
    restored_blob = orjson.dumps(SessionOutliers(**params).to_state())
    events = _sessions(4000, seed=11)
    events += [(T0 + timedelta(days=1, seconds=3 * k), "loop", 0.05) for k in range(60)]
    live_flags, restored_flags = [], []
    for t, trace, cost in events:
        live_flags.append(SessionOutliers.bind(live_state, **params).observe(trace, t, cost))
        restored = SessionOutliers.from_state(orjson.loads(restored_blob))
        restored_flags.append(restored.observe(trace, t, cost))
        restored_blob = orjson.dumps(restored.to_state())
    assert orjson.dumps(live_state) == restored_blob
    assert live_flags == restored_flags
    assert any(live_flags)  # the runaway was flagged, by both
    assert SessionOutliers.from_state(live_state).quantile.sessions > 3400


def test_use_cases_past_the_live_bound_load_their_quantile_and_keep_the_same_state(
    monkeypatch,
) -> None:
    """More use cases than quantiles kept in memory: each one evicted loads its quantile from
    its plain data again, and every state stays what a restore at every event gives."""
    monkeypatch.setattr("spendfuse.detectors.session_outliers._LIVE_MAX", 2)
    params = {"grace_period": 30, "max_open": 20}
    states: list[dict] = [{} for _ in range(3)]
    blobs = [orjson.dumps(SessionOutliers(**params).to_state()) for _ in range(3)]
    events = _sessions(900, seed=12)
    for i, (t, trace, cost) in enumerate(events):
        k = i % 3  # three use cases in turn
        live = SessionOutliers.bind(states[k], **params).observe(trace, t, cost)
        restored = SessionOutliers.from_state(orjson.loads(blobs[k]))
        assert restored.observe(trace, t, cost) == live
        blobs[k] = orjson.dumps(restored.to_state())
    for state, blob in zip(states, blobs, strict=True):
        assert orjson.dumps(state) == blob
        assert SessionOutliers.from_state(state).quantile.sessions > 200
