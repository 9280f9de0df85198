"""Cold start: a new use case's unit-cost watch is armed within its first minutes, so a
misrouting in its first hours alerts. The default pack's watch (``unit_shift``) judges from the
30th call; a seasonal baseline without a prior is still in its grace period (36 buckets, six
hours) and says nothing; the cache watch starts its seasonal baseline from a prior."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from spendfuse.rules.errors import RuleFileError
from spendfuse.rules.loader import parse_rule_file
from spendfuse.rules.ruleset import merge_files
from tests.rules.support import ruleset, run
from tests.support.events import BASE_TIME, make_event

WITHOUT_PRIOR = """version: 1
rules:
  - name: unit_cost_anomaly
    condition:
      type: anomaly
      signal: cost_per_call_usd
      bucket: 10m
      detector:
        name: seasonal_baseline
        params: {z_learn: 3.0, transform: log, direction: up, seasonality: none, alpha_level: 0.03,
                 alpha_scale: 0.03, min_scale: 0.05, confirm_points: 36, grace_period: 36}
      z: 4.0
      min_ratio: 1.3
    for: 10m
    keep_firing_for: 30m
    severity: medium
"""


def _new_use_case(hours: float, *, dearer_from_h: float | None, seed: int = 3) -> list[dict]:
    """A use case born at BASE_TIME: two calls a minute at about a cent each; from
    ``dearer_from_h`` every call goes to a model four times dearer."""
    rng = random.Random(seed)
    events = []
    for m in range(int(hours * 60)):
        dearer = dearer_from_h is not None and m >= dearer_from_h * 60
        for k in range(2):
            cost = 0.01 * rng.lognormvariate(0.0, 0.3) * (4.0 if dearer else 1.0)
            events.append(
                make_event("fresh", cost=cost, at=BASE_TIME + timedelta(minutes=m, seconds=30 * k))
            )
    return events


def test_a_misrouting_in_the_first_hours_alerts_and_not_without_a_prior() -> None:
    events = _new_use_case(5, dearer_from_h=2)
    with_prior = run(events).of("unit_cost_anomaly").alerts
    without = run(events, ruleset(WITHOUT_PRIOR)).of("unit_cost_anomaly").alerts
    firing = [a for a in with_prior if a.status == "firing"]
    assert len(firing) == 1
    delay = firing[0].fired_at - (BASE_TIME + timedelta(hours=2))
    assert timedelta(0) < delay <= timedelta(minutes=40)
    assert firing[0].evidence.value / firing[0].evidence.baseline > 2.5
    assert without == []


def test_a_normal_first_day_raises_no_unit_alert() -> None:
    events = _new_use_case(24, dearer_from_h=None, seed=4)
    out = run(events)
    watches = ("unit_cost_anomaly", "token_bloat_anomaly", "cache_collapse_anomaly")
    assert [a.rule for a in out.alerts if a.rule in watches] == []


def test_a_prior_on_a_detector_without_a_baseline_is_a_load_error() -> None:
    text = (
        "version: 1\nrules:\n  - name: a\n    condition: {type: anomaly, signal: spend_usd,"
        " detector: zscore, prior: {spread: 0.2}}\n    severity: low\n"
    )
    with pytest.raises(RuleFileError) as info:
        merge_files([("test.yaml", parse_rule_file(text, "test.yaml"))])
    assert str(info.value.issues[0]).startswith(
        "test.yaml:4:16 rules[0].condition: prior: detector 'zscore' cannot start from a"
        " prior (hint: use seasonal_baseline or drop prior)"
    ), str(info.value.issues[0])
