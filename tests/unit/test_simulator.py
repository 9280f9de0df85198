"""The simulator: deterministic per seed, realistic shape, incidents visible in the stream."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.simulate import Incident, default_fleet, simulate_fleet

START = datetime(2026, 11, 2, tzinfo=UTC)


def _hour(events: list[dict], hour: int) -> int:
    return sum(1 for e in events if e["event_time"][11:13] == f"{hour:02d}")


def test_deterministic_valid_and_diurnal() -> None:
    a = list(simulate_fleet(default_fleet(), START, timedelta(hours=24), seed=5))
    b = list(simulate_fleet(default_fleet(), START, timedelta(hours=24), seed=5))
    assert a == b
    for e in a[:500]:
        parse_cost_event_obj(e)  # every event is a valid cost event
    assert a == sorted(a, key=lambda e: e["event_time"])
    assert _hour(a, 15) > 4 * _hour(a, 3)  # afternoon peak vs night
    tiers = {e["risk_tier"] for e in a}
    assert tiers == {"low", "medium", "high", "critical"}
    assert any(e.get("cache_status") == "hit" for e in a)
    assert max(e.get("step_number") or 0 for e in a) >= 3


def test_runaway_loop_shows_as_retried_steps_on_one_trace() -> None:
    loop = Incident(
        "runaway_loop", "research-agent", START + timedelta(hours=10), timedelta(minutes=10)
    )
    events = list(
        simulate_fleet(
            default_fleet(), START + timedelta(hours=10), timedelta(minutes=10), [loop], seed=1
        )
    )
    retried = Counter(e["trace_id"] for e in events if e["is_retry"] and e["step_number"] > 10)
    trace, n = retried.most_common(1)[0]
    assert "loop" in trace and n >= 300


def test_cli_writes_events_and_labels(tmp_path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        main, ["simulate", "--out", str(out), "--days", "0.05", "--start", "2026-11-02T00:00:00Z"]
    )
    assert result.exit_code == 0, result.output
    assert (out / "events.jsonl").stat().st_size > 0
    assert (out / "labels.json").exists()
