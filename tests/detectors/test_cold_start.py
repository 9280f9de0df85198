"""Cold start: a baseline seeded with a prior protects a use case from its first bucket.

The watches below are the anomaly rules' own baseline specs and thresholds (and a seasonal
unit-cost watch defined here), evaluated the way the rule does (expected value and z-score
before learning the bucket, N abnormal buckets in a row).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from spendfuse.detectors import create, from_state
from spendfuse.detectors.seasonal_baseline import Prior, SeasonalBaseline
from spendfuse.rules.loader import load_default_pack
from spendfuse.rules.model import AnomalyCondition

T0 = datetime(2026, 11, 3, tzinfo=UTC)  # a Tuesday


@dataclass(frozen=True)
class Watch:
    """A default-pack anomaly watch, in buckets (rules/packs/default/spend.yaml)."""

    spec: dict[str, Any]
    z_threshold: float
    min_value: float
    min_ratio: float
    for_buckets: int


def _watches() -> dict[str, Watch]:
    out = {}
    for rule in load_default_pack().rules.values():
        cond = rule.condition
        if isinstance(cond, AnomalyCondition):
            for_s = rule.for_.seconds if rule.for_ else 0
            out[rule.name] = Watch(
                cond.detector.spec(),
                cond.z,
                cond.min_value,
                cond.min_ratio,
                for_s // cond.bucket.seconds + 1,
            )
    return out


WATCH = _watches()
#: A seasonal-baseline unit watch started from a prior, as a rules directory may still run one
#: (the pack's ``unit_cost_anomaly`` and ``token_bloat_anomaly`` now run ``unit_shift``, which
#: needs no prior: it judges a new use case from its 30th call on).
_SEASONAL_UNIT = {
    "name": "seasonal_baseline",
    "params": {
        "z_learn": 3.0,
        "transform": "log",
        "direction": "up",
        "seasonality": "none",
        "alpha_level": 0.015,
        "alpha_scale": 0.015,
        "min_scale": 0.05,
        "confirm_points": 72,
        "grace_period": 72,
    },
}
WATCH["seasonal_unit_cost"] = Watch(_SEASONAL_UNIT, 4.0, 0.0, 1.3, 2)
WATCH["seasonal_tokens"] = Watch(_SEASONAL_UNIT, 4.0, 0.0, 1.4, 2)


def _baseline(rule: str) -> SeasonalBaseline:
    det = create(WATCH[rule].spec)
    assert isinstance(det, SeasonalBaseline)
    return det


def _first_alert(det: SeasonalBaseline, w: Watch, points: list[dict[str, Any]]) -> int | None:
    """Index of the bucket at which the watch would fire, as the ``anomaly`` condition and the
    lifecycle's ``for`` decide it."""
    run = 0
    for i, x in enumerate(points):
        expected, z, warmed = det.expected(x), det.zscore(x), det.warmed_up
        det.learn_one(x)
        v = x["value"]
        abnormal = warmed and z >= w.z_threshold and v >= w.min_value
        abnormal = abnormal and v >= w.min_ratio * max(expected, 1e-12)
        run = run + 1 if abnormal else 0
        if run >= w.for_buckets:
            return i
    return None


def _unit_cost(n: int, level: float, seed: int, bump: dict[int, float] | None = None) -> list:
    """10-minute cost-per-call buckets: ``level`` with 12 % lognormal noise."""
    rng = random.Random(seed)
    bump = bump or {}
    return [
        {
            "t": T0 + timedelta(minutes=10 * i),
            "value": level * bump.get(i, 1.0) * math.exp(rng.gauss(0, 0.12)),
        }
        for i in range(n)
    ]


def _spend(n: int, level: float, seed: int, start: datetime = T0, spike: range = range(0)):
    """5-minute spend buckets with a working-day shape and 25 % noise; ``spike`` is 6x."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        t = start + timedelta(minutes=5 * i)
        day = max(0.0, math.sin(math.pi * (t.hour - 7) / 15)) if 7 <= t.hour <= 22 else 0.0
        v = level * (0.2 + 0.8 * day) * math.exp(rng.gauss(0, 0.25))
        out.append({"t": t, "value": v * (6.0 if i in spike else 1.0)})
    return out


def test_without_a_prior_a_new_use_case_is_unprotected_for_hours() -> None:
    w = WATCH["seasonal_unit_cost"]
    misroute = {i: 16.0 for i in range(3, 30)}  # 30 minutes in, 16x dearer model
    det = _baseline("seasonal_unit_cost")
    assert not det.warmed_up
    fired = _first_alert(det, w, _unit_cost(36, 0.0004, seed=1, bump=misroute))
    assert fired is None  # still in its 6-hour grace period when the incident ends


def test_model_price_prior_catches_misrouting_in_the_first_hour() -> None:
    w = WATCH["seasonal_unit_cost"]
    misroute = {i: 16.0 for i in range(3, 30)}
    det = _baseline("seasonal_unit_cost").start_from(Prior(level=0.0004, spread=0.3))
    assert det.warmed_up
    assert _first_alert(det, w, _unit_cost(36, 0.0004, seed=1, bump=misroute)) == 4


@pytest.mark.parametrize("off_by", [0.5, 1.0, 1.8])
def test_prior_off_by_a_factor_gives_no_false_alert_on_a_normal_first_day(off_by: float) -> None:
    for rule in ("seasonal_unit_cost", "seasonal_tokens"):
        det = _baseline(rule).start_from(Prior(level=0.0004 * off_by, spread=0.3))
        assert _first_alert(det, WATCH[rule], _unit_cost(144, 0.0004, seed=2)) is None
        # and the level has moved to the use case's own within the day
        assert det.expected({"t": T0}) == pytest.approx(0.0004, rel=0.1)


def test_tenant_prior_gives_spend_rate_protection_on_the_first_day() -> None:
    w = WATCH["spend_spike_anomaly"]
    sibling = _baseline("spend_spike_anomaly")
    for x in _spend(5 * 288, level=2.0, seed=3, start=T0 - timedelta(days=5)):
        sibling.learn_one(x)
    prior = Prior.pooled([sibling.prior(weight=24)])
    assert prior.hour is not None and prior.level > 0
    # the new use case (history from 06:00) spends 0.6x its sibling; its first day is normal...
    born = T0 + timedelta(hours=6)
    quiet = _baseline("spend_spike_anomaly").start_from(prior)
    assert _first_alert(quiet, w, _spend(288, level=1.2, seed=4, start=born)) is None
    # ...or has a 6x spike at 10:00 for 40 minutes, caught within 3 buckets (15 minutes)
    spike = range(4 * 12, 4 * 12 + 8)
    det = _baseline("spend_spike_anomaly").start_from(prior)
    assert _first_alert(det, w, _spend(288, level=1.2, seed=4, start=born, spike=spike)) == 50
    # without the prior the baseline is still in its 8-hour grace period then
    bare = _baseline("spend_spike_anomaly")
    assert _first_alert(bare, w, _spend(288, level=1.2, seed=4, start=born, spike=spike)) is None


def test_prior_survives_a_plain_data_round_trip_and_replays_identically() -> None:
    det = _baseline("spend_spike_anomaly").start_from(Prior(level=1.0, spread=0.6, weight=20))
    points = _spend(400, level=1.0, seed=5)
    for x in points[:100]:
        det.learn_one(x)
    blob = orjson.dumps(det.to_state())
    twin = from_state(orjson.loads(blob))
    assert orjson.dumps(twin.to_state()) == blob
    for x in points[100:]:
        assert twin.score_one(x) == det.score_one(x)
        twin.learn_one(x)
        det.learn_one(x)
    prior = Prior(level=1.0, spread=0.6, hour=tuple([0.1] * 24), dow=tuple([0.0] * 7))
    assert Prior.from_state(orjson.loads(orjson.dumps(prior.to_state()))) == prior


def test_pooled_prior_is_robust_to_one_odd_sibling() -> None:
    priors = [Prior(1.0, 0.4), Prior(1.2, 0.5), Prior(100.0, 0.45), Prior(0.9, 0.6)]
    pooled = Prior.pooled(priors, weight=10)
    assert pooled.level == pytest.approx(1.1) and pooled.spread == pytest.approx(0.475)
    assert pooled.weight == 10


def test_start_from_is_only_for_a_cold_baseline_and_priors_are_validated() -> None:
    det = _baseline("seasonal_unit_cost")
    for x in _unit_cost(det.grace_period + 4, 0.0004, seed=6):
        det.learn_one(x)
    with pytest.raises(ValueError, match="warmed up"):
        det.start_from(Prior(0.0004, 0.3))
    for bad in (
        {"level": -1.0, "spread": 0.3},
        {"level": 1.0, "spread": 0.0},
        {"level": float("nan"), "spread": 0.3},
        {"level": 1.0, "spread": 0.3, "weight": 0},
        {"level": 1.0, "spread": 0.3, "hour": (0.0,) * 3},
    ):
        with pytest.raises(ValueError):
            Prior(**bad)
