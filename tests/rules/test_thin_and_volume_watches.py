"""The default pack on thin traffic and on volume: a thin use case's dearer model is judged
every five calls (``carry_for``), not only in the rare 5-minute bucket that has five; traffic
that doubles at a flat unit cost raises the volume watch (and says so), a normal day does not."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import numpy as np

from spendfuse.detectors.spend_signals import add_event
from spendfuse.schemas.cost_event import CostEvent
from tests.rules.support import ruleset, run
from tests.support.events import BASE_TIME, make_event

NO_CARRY = """version: 1
rules:
  - name: unit_cost_anomaly
    condition:
      type: anomaly
      signal: cost_per_call_usd
      bucket: 5m
      detector:
        name: seasonal_baseline
        params: {z_learn: 3.0, transform: log, direction: up, seasonality: none, alpha_level: 0.015,
                 alpha_scale: 0.015, min_scale: 0.05, confirm_points: 72, grace_period: 72}
      z: 4.0
      min_ratio: 1.3
      min_calls: 5
      prior: {spread: 0.3, weight: 6}
    for: 5m
    keep_firing_for: 30m
    severity: medium
"""


def _thin(hours: float, *, dearer_from_h: float, seed: int = 5) -> list[dict]:
    """One call every four minutes on average (Poisson), about a cent each; from
    ``dearer_from_h`` every call goes to a model four times dearer."""
    rng = random.Random(seed)
    events, t = [], 0.0
    while t < hours * 60:
        t += rng.expovariate(1 / 4.0)
        cost = 0.01 * rng.lognormvariate(0.0, 0.3) * (4.0 if t >= dearer_from_h * 60 else 1.0)
        events.append(make_event("thin", cost=cost, at=BASE_TIME + timedelta(minutes=t)))
    return events


def test_a_thin_use_cases_dearer_model_alerts_within_half_an_hour() -> None:
    events = _thin(14, dearer_from_h=12)
    change = BASE_TIME + timedelta(hours=12)
    firing = [a for a in run(events).of("unit_cost_anomaly").alerts if a.status == "firing"]
    assert len(firing) == 1
    assert timedelta(0) < firing[0].fired_at - change <= timedelta(minutes=30)
    without = run(events, ruleset(NO_CARRY)).of("unit_cost_anomaly").alerts
    late = [a for a in without if a.fired_at - change <= timedelta(minutes=30)]
    assert late == []  # 5-minute buckets of one call each: hardly ever five calls


def test_a_pool_of_short_buckets_is_judged_once_it_has_enough_calls() -> None:
    state: dict = {}
    closed = []
    for k in range(12):  # one call every 4 minutes, at $0.01 then $0.04
        cost = 0.01 if k < 6 else 0.04
        at = BASE_TIME + timedelta(minutes=4 * k)
        event = CostEvent.model_validate(make_event("u", cost=cost, at=at))
        closed += add_event(state, event, 300, 3, carry=12)
    units = [b.values["cost_per_call_usd"] for b in closed if "cost_per_call_usd" in b.values]
    assert len(units) >= 3  # every three calls, not never
    assert math.isclose(units[0], 0.01) and math.isclose(units[-1], 0.04)
    state2: dict = {}
    closed2 = []
    for k in range(12):
        at = BASE_TIME + timedelta(minutes=4 * k)
        closed2 += add_event(state2, CostEvent.model_validate(make_event("u", at=at)), 300, 3)
    assert not any("cost_per_call_usd" in b.values for b in closed2)  # no carry: no unit signal


def _traffic(days: float, *, double_at_h: float | None, seed: int = 2) -> list[dict]:
    """A working-day shape, at most three calls a minute, a flat cent per call; from
    ``double_at_h`` twice the calls."""
    rng = np.random.default_rng(seed)
    events = []
    for m in range(int(days * 1440)):
        hour = (m / 60) % 24
        day = max(0.0, math.sin(math.pi * (hour - 7) / 15)) ** 1.5 if 7 <= hour <= 22 else 0.0
        lam = 3.0 * (0.2 + 0.8 * day)
        if double_at_h is not None and m >= double_at_h * 60:
            lam *= 2.0
        for _ in range(int(rng.poisson(lam))):
            at = BASE_TIME + timedelta(minutes=m, seconds=float(rng.uniform(0, 59)))
            events.append(make_event("grow", cost=0.01, at=at))
    events.sort(key=lambda e: e["event_time"])
    return events


def test_doubled_traffic_alerts_the_volume_watch_and_names_volume() -> None:
    change_h = 2 * 24 + 15  # the third afternoon
    out = run(_traffic(2.75, double_at_h=change_h))
    firing = [a for a in out.of("volume_shift_anomaly").alerts if a.status == "firing"]
    assert firing, "a doubling of the calls must alert"
    change = BASE_TIME + timedelta(hours=change_h)
    assert all(a.fired_at >= change for a in firing)  # nothing before the change
    assert firing[0].fired_at - change <= timedelta(minutes=30)
    assert firing[0].labels["driver"] == "volume"
    assert [a.rule for a in out.alerts if a.rule == "unit_cost_anomaly"] == []
