"""count_shift: traffic that doubles is seen as fast as its counts allow; a normal week with a
working-day shape, a weekend and bursty calls (several calls per task) stays quiet."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from spendfuse.detectors.count_shift import CountShift, signed_deviance

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _shape(t: datetime, weekend: float) -> float:
    hour = t.hour + t.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 15)) ** 1.5 if 7 <= hour <= 22 else 0.0
    return (0.15 + 0.85 * day) * (weekend if t.weekday() >= 5 else 1.0)


def _alarms(
    seed: int,
    tasks_at_peak: float,
    *,
    factor: float = 1.0,
    change_at: int | None = None,
    days: int = 5,
    weekend: float = 0.5,
    steps: tuple[int, int] = (1, 3),
) -> list[int]:
    """Minutes at which the score reaches 0.5: one-minute buckets of calls, each task (a
    Poisson count) making 1-3 calls, so the counts are over-dispersed as real calls are."""
    rng = np.random.default_rng(seed)
    det = CountShift()
    out = []
    for i in range(days * 1440):
        t = T0 + timedelta(minutes=i)
        lam = tasks_at_peak * _shape(t, weekend)
        if change_at is not None and i >= change_at:
            lam *= factor
        tasks = int(rng.poisson(lam))
        calls = int(rng.integers(steps[0], steps[1] + 1, size=tasks).sum()) if tasks else 0
        x = {"t": t, "value": float(calls)}
        if det.score_one(x) >= 0.5:
            out.append(i)
        det.learn_one(x)
    return out


def _episodes(minutes: list[int]) -> int:
    return sum(1 for k, i in enumerate(minutes) if k == 0 or i - minutes[k - 1] > 15)


def test_signed_deviance_is_zero_at_the_mean_and_grows_both_ways() -> None:
    assert signed_deviance(10.0, 10.0) == 0.0
    assert signed_deviance(20.0, 10.0) > 2.5
    assert signed_deviance(0.0, 10.0) < -4.0
    assert signed_deviance(3.0, 0.0) == 0.0  # no expectation, no evidence


def test_a_normal_week_with_a_weekend_stays_quiet() -> None:
    for seed, weekend in ((1, 0.5), (2, 1.0), (3, 1.4)):
        late = [i for i in _alarms(seed, 2.0, days=7, weekend=weekend) if i >= 1440]
        assert _episodes(late) <= 1, (seed, late[:5])


def test_busy_traffic_doubling_is_seen_within_minutes() -> None:
    delays = []
    for seed in range(4):
        change = 3 * 1440 + 14 * 60 + 17 * seed  # a Thursday afternoon, ~5 calls a minute
        after = [
            i - change for i in _alarms(seed, 2.5, factor=2.0, change_at=change) if i >= change
        ]
        delays.append(after[0] if after else math.inf)
    assert sorted(delays)[1] <= 15, delays  # median of four
    assert max(delays) <= 40, delays


def test_thin_traffic_tripling_is_seen_within_the_hour() -> None:
    delays = []
    for seed in range(4):
        change = 3 * 1440 + 10 * 60 + 23 * seed  # one call every two to three minutes
        alarms = _alarms(seed, 0.5, factor=3.0, change_at=change, weekend=1.0, steps=(1, 1))
        after = [i - change for i in alarms if i >= change]
        delays.append(after[0] if after else math.inf)
    assert sorted(delays)[1] <= 60, delays
    assert max(delays) <= 120, delays


def test_a_lasting_rise_becomes_the_new_normal() -> None:
    change = 3 * 1440 + 9 * 60
    alarms = _alarms(5, 2.0, factor=2.5, change_at=change, days=5)
    assert any(change <= i < change + 60 for i in alarms)
    assert not [i for i in alarms if i >= change + 8 * 60]  # adopted within hours


def test_no_verdict_before_the_grace_period() -> None:
    det = CountShift(grace_period=60)
    for i in range(59):
        x = {"t": T0 + timedelta(minutes=i), "value": 1000.0 if i > 50 else 1.0}
        assert det.score_one(x) == 0.0
        det.learn_one(x)
