"""Focused behaviour of the ``fusion`` detector and its building blocks."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.detectors import create
from spendfuse.detectors._windows import RankWindow, seconds_of_day
from spendfuse.detectors.fusion import Fusion

from .support import T0, feed, seasonal_stream


def test_rank_window_tail_probabilities() -> None:
    w = RankWindow(4)
    assert w.tail(1.0, 2.0) == 1.0  # empty: nothing is surprising
    for v in (1.0, 2.0, 3.0, 4.0, 5.0):
        w.add(v)
    assert list(w.fifo) == [2.0, 3.0, 4.0, 5.0] and w.srt == [2.0, 3.0, 4.0, 5.0]
    assert w.tail(2.0, 2.0) == pytest.approx(4 / 5)
    assert w.tail(5.0, 2.0) == pytest.approx(1 / 5)
    assert w.tail(10.0, 2.0) == pytest.approx((5 / 10) ** 2 / 5)  # power-law past the max
    assert RankWindow(4, w.to_state()).srt == w.srt


def test_seconds_of_day_uses_wall_clock_fields() -> None:
    assert seconds_of_day(datetime(2024, 1, 1, 3, 30)) == 3.5 * 3600
    assert seconds_of_day(datetime(2024, 1, 1, 3, 30, tzinfo=UTC)) == 3.5 * 3600
    assert seconds_of_day(86400 * 10 + 60.0) == 60.0


def test_big_spike_scores_high_and_normal_points_low() -> None:
    points = seasonal_stream(3000, spikes={2500: 100.0})
    scores = feed(create("fusion"), points)
    assert scores[2500] > 0.8
    assert sorted(scores[500:2500])[int(0.99 * 2000)] < 0.5


def test_daily_ramps_are_learned_by_the_time_of_day_profile() -> None:
    # a square wave: high from 08:00 to 18:00 every day; the ramps fool a rolling median
    points = []
    for i in range(288 * 12):
        t = T0 + timedelta(minutes=5 * i)
        points.append({"t": t, "value": 80.0 if 8 <= t.hour < 18 else 20.0})
    det = create("fusion")
    scores = feed(det, points)
    assert det._err_season < det._err_med  # the profile was selected
    assert max(scores[288 * 5 :]) < 0.5  # no alarms on ordinary days
    # a day without the ramp (stays low through the working hours) is flagged at 08:00
    day = [{"t": T0 + timedelta(days=12, minutes=5 * k), "value": 20.0} for k in range(200)]
    day_scores = feed(det, day)
    first = next(k for k, s in enumerate(day_scores) if s > 0.5)
    assert 96 <= first <= 98  # 08:00 is the 96th five-minute slot


def test_one_incident_pages_once() -> None:
    # a level shift keeps residuals high for a while; the refractory period keeps it one alarm
    points = seasonal_stream(2000, spikes={i: 60.0 for i in range(1500, 2000)})
    det = create("fusion")
    scores = feed(det, points)
    threshold = 0.5
    alarms = [i for i in range(1500, 1700) if scores[i] >= threshold]
    assert alarms and alarms[0] <= 1502
    assert len(alarms) <= 3


def test_flapping_streams_need_ever_bigger_surprises() -> None:
    # the same spike every 200 points: the alarm-rate penalty lowers each repeat's score
    spikes = {i: 50.0 for i in range(400, 4000, 200)}
    scores = feed(create("fusion"), seasonal_stream(4000, spikes=spikes))
    at = [scores[i] for i in sorted(spikes)]
    assert at[-1] < at[0]
    assert at[-1] < 0.5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("history", 5),
        ("gamma", 0.0),
        ("avg_windows", [1]),
        ("avg_windows", "10"),
        ("bucket_seconds", 0),
        ("select_fade", 0.0),
        ("alarm_p", 2.0),
        ("median_window", 1.5),
        ("record_window", -1),
        ("record_factor", 1.5),
        ("scale_seconds", 0),
        ("scale_span", 13),
        ("scale_depth", -1),
    ],
)
def test_invalid_params(param: str, value: object) -> None:
    with pytest.raises(ValueError, match=param):
        Fusion(**{param: value})  # type: ignore[arg-type]


def test_state_mismatch_is_rejected() -> None:
    state = create("fusion", avg_windows=[10]).to_state()
    state["params"]["avg_windows"] = [10, 30]
    with pytest.raises(ValueError, match="avg_windows"):
        Fusion.from_state(state)


def test_holt_winters_survives_a_zero_mean_warm_up() -> None:
    det = create("holt_winters", seasonality=12)
    points = [
        {"t": T0 + timedelta(minutes=i), "value": 0.0 if i < 40 else float(i % 12)}
        for i in range(200)
    ]
    assert all(0.0 <= s <= 1.0 for s in feed(det, points))


def _cron_stream(days: int = 12, seed: int = 5) -> tuple[list[dict[str, object]], set[int]]:
    """Flat noisy series with a big daily "cron" spike somewhere between 03:00 and 03:35."""
    rng = random.Random(seed)
    spikes = {288 * d + 36 + rng.randrange(0, 8) for d in range(days)}
    points: list[dict[str, object]] = []
    for i in range(288 * days):
        v = 10.0 + rng.gauss(0.0, 0.3) + (12.0 if i in spikes else 0.0)
        points.append({"t": T0 + timedelta(minutes=5 * i), "value": v})
    return points, spikes


def test_off_schedule_spike_stands_out_among_scheduled_ones() -> None:
    # the daily spikes drift within the hour, so the 5-minute profile cannot predict them; the
    # time-of-day scale (largest residual near this time on previous days) still knows them
    points, spikes = _cron_stream()
    off = 288 * 11 + 204  # 17:00 on the last day, smaller than every cron spike
    points[off]["value"] = float(points[off]["value"]) + 5.0  # type: ignore[arg-type]
    scores = feed(create("fusion"), points)
    without = feed(create("fusion", scale_depth=0), points)
    assert scores[off] > 0.7 > without[off]
    assert all(scores[i] < scores[off] for i in spikes)
    normal = [s for i, s in enumerate(scores[288 * 3 :], 288 * 3) if i not in spikes and i != off]
    assert max(normal) < scores[off]


def test_only_new_records_score_in_full() -> None:
    # a point not more surprising than one of the last record_window points is a continuation:
    # its score is scaled by record_factor (kept graded, never zeroed, never enough to page)
    points = seasonal_stream(2600, spikes={2000: 7.0, 2030: 7.0, 2300: 100.0})
    on = feed(create("fusion"), points)
    off = feed(create("fusion", record_window=0), points)
    assert on[2300] == off[2300] == 1.0
    assert on[2030] == pytest.approx(0.25 * off[2030]) and on[2030] > 0.0
    assert all(a == b or a == pytest.approx(0.25 * b) for a, b in zip(on, off, strict=True))
