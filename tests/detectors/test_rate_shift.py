"""rate_shift: a doubled event rate is seen within minutes; a normal week stays quiet."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np

from spendfuse.detectors.rate_shift import RateShift

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _shape(t: datetime) -> float:
    hour = t.hour + t.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 15)) ** 1.5 if 7 <= hour <= 22 else 0.0
    return (0.2 + 0.8 * day) * (0.5 if t.weekday() >= 5 else 1.0)


def _alarms(seed: int, peak: float, change_at: int | None = None, days: int = 5) -> list[int]:
    """Minutes at which the score reaches 0.5 (one-minute buckets of Poisson counts)."""
    rng = np.random.default_rng(seed)
    det = RateShift()
    out = []
    for i in range(days * 1440):
        t = T0 + timedelta(minutes=i)
        lam = peak * _shape(t) * (2.0 if change_at is not None and i >= change_at else 1.0)
        x = {"t": t, "value": float(rng.poisson(lam))}
        if det.score_one(x) >= 0.5:
            out.append(i)
        det.learn_one(x)
    return out


def test_a_normal_working_week_stays_quiet_after_its_first_days() -> None:
    for seed in (1, 2, 3):
        late = [i for i in _alarms(seed, peak=2.0, days=7) if i >= 2 * 1440]
        episodes = sum(1 for k, i in enumerate(late) if k == 0 or i - late[k - 1] > 60)
        assert episodes <= 1, (seed, late[:5])


def test_doubled_traffic_is_seen_within_half_an_hour() -> None:
    delays = []
    for seed in range(4):
        change = 3 * 1440 + 14 * 60 + 17 * seed  # a Thursday afternoon
        after = [
            i - change for i in _alarms(seed, peak=2.0, change_at=change, days=4) if i >= change
        ]
        delays.append(after[0] if after else math.inf)
    assert sorted(delays)[1] <= 30  # median of four within 30 minutes
    assert max(delays) <= 90
