"""The seasonal baseline: learns the day's shape, ignores spikes, adopts confirmed level shifts."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import orjson

from spendfuse.detectors import from_state
from spendfuse.detectors.registry import create
from spendfuse.detectors.seasonal_baseline import SeasonalBaseline

T0 = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def _day_curve(t: datetime) -> float:
    return 1.0 + 4.0 * max(0.0, math.sin(math.pi * (t.hour - 7) / 15))


def _train(det: SeasonalBaseline, days: int, level: float = 1.0, seed: int = 1) -> datetime:
    rnd = random.Random(seed)
    t = T0
    for _ in range(days * 24 * 12):
        x = {"t": t, "value": level * _day_curve(t) * math.exp(rnd.gauss(0, 0.1))}
        det.learn_one(x)
        t += timedelta(minutes=5)
    return t


def test_learns_the_daily_shape() -> None:
    det = SeasonalBaseline(transform="log", offset=0.01)
    t = _train(det, 5)
    afternoon = det.expected({"t": t.replace(hour=14, minute=30)})
    night = det.expected({"t": t.replace(hour=3)})
    assert afternoon / night > 3.0
    assert det.score_one({"t": t.replace(hour=14, minute=30), "value": afternoon}) < 0.5


def test_a_spike_scores_high_and_barely_moves_the_baseline() -> None:
    det = SeasonalBaseline(transform="log", offset=0.01, direction="up", z_learn=3.0)
    t = _train(det, 3)
    noon = t.replace(hour=12)
    before = det.expected({"t": noon})
    spike = {"t": noon, "value": before * 10}
    assert det.zscore(spike) > 6
    assert det.score_one(spike) > 0.8
    det.learn_one(spike)
    assert before < det.expected({"t": noon}) < before * 1.05


def test_confirmed_level_shift_is_adopted() -> None:
    det = SeasonalBaseline(transform="log", offset=0.01, confirm_points=12, z_learn=3.0)
    t = _train(det, 3)
    rnd = random.Random(2)
    zs = []
    for _ in range(48):  # four hours at 3x the old level
        x = {"t": t, "value": 3 * _day_curve(t) * math.exp(rnd.gauss(0, 0.1))}
        zs.append(det.zscore(x))
        det.learn_one(x)
        t += timedelta(minutes=5)
    assert zs[0] > 4  # the shift is anomalous at first...
    assert abs(zs[-1]) < 3  # ...and normal once confirmed and adopted


def test_growth_only_direction_ignores_drops() -> None:
    det = SeasonalBaseline(transform="log", offset=0.01, direction="up")
    t = _train(det, 2)
    low = {"t": t.replace(hour=14), "value": 0.01}
    assert det.zscore(low) < -3
    assert det.score_one(low) == 0.0


def test_state_round_trips_through_json_and_registry() -> None:
    det = create({"name": "seasonal_baseline", "params": {"transform": "log", "offset": 0.5}})
    t = _train(det, 1)  # type: ignore[arg-type]
    restored = from_state(orjson.loads(orjson.dumps(det.to_state())))
    x = {"t": t, "value": 7.0}
    assert restored.score_one(x) == det.score_one(x)
    restored.learn_one(x)
    det.learn_one(x)
    assert restored.to_state() == det.to_state()


def test_bad_params_name_the_parameter() -> None:
    for kwargs, name in (
        ({"transform": "sqrt"}, "transform"),
        ({"z_learn": 0}, "z_learn"),
        ({"confirm_points": 0}, "confirm_points"),
    ):
        try:
            SeasonalBaseline(**kwargs)  # type: ignore[arg-type]
        except ValueError as exc:
            assert name in str(exc)
        else:
            raise AssertionError(f"{kwargs} accepted")
