"""Focused behaviour of the ``fusion`` detector and its building blocks."""

from __future__ import annotations

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
    [("history", 5), ("gamma", 0.0), ("avg_windows", [1]), ("avg_windows", "10"),
     ("bucket_seconds", 0), ("select_fade", 0.0), ("alarm_p", 2.0), ("median_window", 1.5)],
)  # fmt: skip
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
