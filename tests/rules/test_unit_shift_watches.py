"""The default pack's unit watches on a busy use case: a 2x shift of cost or tokens per call
is weighed call by call (``unit_shift``) and alerts within ten minutes; flat traffic whose calls
scatter as real ones do raises nothing."""

from __future__ import annotations

import random
from datetime import timedelta

from tests.rules.support import run
from tests.support.events import BASE_TIME, make_event

WATCHES = ("unit_cost_anomaly", "token_bloat_anomaly", "volume_shift_anomaly")


def _busy(
    hours: float, *, shift_at_h: float | None = None, cost_x: float = 1.0, tokens_x: float = 1.0
) -> list[dict]:
    """About two calls a minute (Poisson), a cent each with a lognormal scatter of 0.45 (as
    lognormal token counts give), 1,500 tokens likewise; from ``shift_at_h`` each call costs
    ``cost_x`` times and carries ``tokens_x`` times the tokens."""
    rng = random.Random(11)
    events, t = [], 0.0
    while t < hours * 60:
        t += rng.expovariate(2.0)
        shifted = shift_at_h is not None and t >= shift_at_h * 60
        cost = 0.01 * rng.lognormvariate(0.0, 0.45) * (cost_x if shifted else 1.0)
        tokens = 1500 * rng.lognormvariate(0.0, 0.45) * (tokens_x if shifted else 1.0)
        events.append(
            make_event(
                "busy",
                cost=cost,
                at=BASE_TIME + timedelta(minutes=t),
                input_tokens=int(tokens * 0.8),
                output_tokens=int(tokens * 0.2),
            )
        )
    return events


def _first_firing(events: list[dict], rule: str) -> timedelta | None:
    change = BASE_TIME + timedelta(hours=3)
    firing = [a for a in run(events).of(rule).alerts if a.status == "firing"]
    assert all(a.fired_at >= change for a in firing), "nothing may fire before the change"
    return firing[0].fired_at - change if firing else None


def test_twice_the_cost_per_call_alerts_within_ten_minutes() -> None:
    delay = _first_firing(_busy(4, shift_at_h=3, cost_x=2.0), "unit_cost_anomaly")
    assert delay is not None and delay <= timedelta(minutes=10)


def test_twice_the_tokens_per_call_alert_within_ten_minutes() -> None:
    delay = _first_firing(_busy(4, shift_at_h=3, tokens_x=2.0), "token_bloat_anomaly")
    assert delay is not None and delay <= timedelta(minutes=10)


def test_a_tenfold_misrouting_alerts_within_a_few_calls() -> None:
    delay = _first_firing(_busy(4, shift_at_h=3, cost_x=10.0), "unit_cost_anomaly")
    assert delay is not None and delay <= timedelta(minutes=5)


def test_a_small_rise_of_cost_per_call_does_not_page() -> None:
    """1.2x is under the test's midpoint (sqrt 2): its evidence drifts down, never up."""
    assert _first_firing(_busy(6, shift_at_h=3, cost_x=1.2), "unit_cost_anomaly") is None


def test_flat_busy_traffic_raises_no_unit_or_volume_alert() -> None:
    out = run(_busy(30))
    assert [a.rule for a in out.alerts if a.rule in WATCHES] == []
