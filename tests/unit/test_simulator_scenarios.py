"""Random scenarios: seedable, thin traffic is thin, new use cases start late, ramps ramp."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import orjson
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.simulate import (
    Fleet,
    Incident,
    UseCaseProfile,
    expected_events_per_minute,
    random_scenario,
    simulate_fleet,
    traffic_shape,
)

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday


def test_same_seed_same_scenario_and_events_other_seed_differs() -> None:
    a, b, c = random_scenario(4, days=2), random_scenario(4, days=2), random_scenario(5, days=2)
    assert a == b
    assert a.fleet != c.fleet
    hour = timedelta(hours=1)
    ev_a = list(simulate_fleet(a.fleet, a.start, hour, a.incidents, seed=4))
    ev_b = list(simulate_fleet(b.fleet, b.start, hour, b.incidents, seed=4))
    assert ev_a == ev_b and ev_a


def test_scenario_mixes_busy_thin_new_and_labels_every_incident() -> None:
    kinds: Counter[str] = Counter()
    traffic: Counter[str] = Counter()
    first_day = 0
    for seed in range(1, 11):
        sc = random_scenario(seed, days=6)
        born = {p.use_case_id: p.history_start for p in sc.fleet.use_cases}
        for lab, inc in zip(sc.labels(), sc.incidents, strict=True):
            kinds[lab["kind"]] += 1
            traffic[lab["traffic"]] += 1
            if born[inc.use_case_id] is not None:
                assert timedelta(0) < inc.start - born[inc.use_case_id] < timedelta(days=1)
                first_day += 1
    assert set(kinds) == {
        "volume_spike",
        "gradual_ramp",
        "prompt_bloat",
        "misrouted_model",
        "cache_collapse",
        "runaway_loop",
    }
    assert traffic["busy"] >= 10 and traffic["thin"] >= 10
    assert first_day >= 5


def test_thin_use_case_emits_one_event_every_one_to_five_minutes() -> None:
    sc = random_scenario(3, days=2)
    thin = [p for p in sc.fleet.use_cases if p.use_case_id.startswith("thin-")]
    events = list(simulate_fleet(Fleet(tuple(thin)), sc.start, timedelta(days=2), [], seed=3))
    per_uc = Counter(e["use_case_id"] for e in events)
    for p in thin:
        per_minute = per_uc[p.use_case_id] / (2 * 24 * 60)
        assert 0.15 <= per_minute <= 1.0, (p.use_case_id, per_minute)


def test_new_use_case_has_no_traffic_before_its_history_starts() -> None:
    born = START + timedelta(hours=5)
    p = UseCaseProfile("fresh", "acme", "low", tasks_per_minute=3.0, history_start=born)
    events = list(simulate_fleet(Fleet((p,)), START, timedelta(hours=10), [], seed=1))
    assert events
    assert min(e["event_time"] for e in events) >= born.isoformat()[:19]
    assert expected_events_per_minute(p, born - timedelta(minutes=1)) == 0.0


def test_gradual_ramp_multiplier_and_change_at() -> None:
    ramp = Incident(
        "gradual_ramp", "x", START, timedelta(hours=5), factor=3.0, ramp=timedelta(hours=2)
    )
    assert ramp.multiplier(START) == 1.0
    assert ramp.multiplier(START + timedelta(hours=1)) == 2.0
    assert ramp.multiplier(START + timedelta(hours=4)) == 3.0
    assert ramp.change_at == START + timedelta(hours=1)  # reaches 2x half-way up
    spike = Incident("volume_spike", "x", START, timedelta(hours=1), factor=2.5)
    assert spike.multiplier(START) == 2.5 and spike.change_at == START


def test_ramp_raises_volume_and_weekend_factor_shapes_weekends() -> None:
    p = UseCaseProfile("uc", "acme", "low", tasks_per_minute=3.0, diurnal_floor=1.0)
    ramp = Incident(
        "gradual_ramp",
        "uc",
        START + timedelta(hours=2),
        timedelta(hours=4),
        factor=4.0,
        ramp=timedelta(hours=2),
    )
    events = list(simulate_fleet(Fleet((p,)), START, timedelta(hours=6), [ramp], seed=2))
    by_hour = Counter(int(e["event_time"][11:13]) for e in events)
    assert by_hour[5] > 2.5 * by_hour[0]
    saturday = datetime(2026, 11, 7, 15, tzinfo=UTC)
    assert traffic_shape(saturday, 1.6) > traffic_shape(saturday - timedelta(days=4), 1.6)
    assert traffic_shape(saturday, 0.3) < traffic_shape(saturday - timedelta(days=4), 0.3)


def test_cli_random_fleet_writes_labels_with_traffic_class(tmp_path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        main, ["simulate", "--out", str(out), "--days", "3", "--seed", "2", "--random-fleet"]
    )
    assert result.exit_code == 0, result.output
    labels = orjson.loads((out / "labels.json").read_bytes())
    assert labels and {lab["traffic"] for lab in labels} <= {"busy", "thin"}
    first = orjson.loads((out / "events.jsonl").open("rb").readline())
    assert first["use_case_id"].split("-")[0] in {"busy", "thin", "new"}
