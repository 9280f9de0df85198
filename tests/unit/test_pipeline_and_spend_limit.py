"""The pure decision path: dedup, the 1-minute spend limit, firing/resolve, guardrail."""

from __future__ import annotations

from datetime import timedelta

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Outcome, Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules import Engine
from spendfuse.schemas import DeadLetter
from tests.support.events import BASE_TIME, make_event
from tests.support.rules import spend_limit_rules


def _pipeline(limit: float = 1.0, action: str = "degrade") -> Pipeline:
    return Pipeline(Engine(spend_limit_rules(limit, action)))


def _run(events: list[dict], **kw):
    return replay_records([orjson.dumps(e) for e in events], _pipeline(**kw))


def _set(scope: dict) -> dict:
    """A command's ``within`` without its unset qualifiers."""
    return {k: v for k, v in scope.items() if v is not None}


def test_fires_once_per_incident_and_resolves_once() -> None:
    events = [make_event("u", cost=0.4, seconds=s) for s in (0, 10, 20, 30, 40)]  # $2 in min 0
    events += [make_event("u", cost=0.5, seconds=60 + s) for s in (0, 10, 20)]  # $1.5 in min 1
    events += [make_event("u", cost=0.1, seconds=120)]  # min 2 starts: min 1 still over
    events += [make_event("u", cost=0.1, seconds=180)]  # min 3 starts: min 2 was under
    result = _run(events)
    alerts = [orjson.loads(a) for a in result.alerts]
    assert [a["status"] for a in alerts] == ["firing", "resolved"]
    assert alerts[0]["fired_at"] == "2026-11-23T09:00:20.000Z"
    assert alerts[1]["resolved_at"] == "2026-11-23T09:03:00.000Z"
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"]
    commands = [orjson.loads(c) for c in result.commands]
    assert [c["kind"] for c in commands] == ["degrade", "restore"]
    assert commands[0]["params"]["cache_first"] is True
    assert commands[0]["ttl_s"] == 3600  # valid an hour from publication (the publisher's clock)
    assert _set(commands[0]["within"]) == {
        "tenant_id": "acme",
        "use_case_id": "u",
        "risk_tiers": ["low"],
    }


def test_a_gap_with_no_spend_resolves() -> None:
    events = [make_event("u", cost=0.8, seconds=s) for s in (0, 1)]
    events += [make_event("u", cost=0.1, seconds=600)]
    alerts = [orjson.loads(a) for a in _run(events).alerts]
    assert [a["status"] for a in alerts] == ["firing", "resolved"]


def test_near_miss_stays_quiet() -> None:
    events = [make_event("u", cost=0.25, seconds=s) for s in (0, 10, 20, 30)]  # exactly $1.00
    result = _run(events)
    assert result.alerts == [] and result.commands == []


def test_guardrail_alerts_without_command_for_risky_tiers() -> None:
    for tier in ("medium", "high", "critical"):
        events = [make_event("u", cost=0.8, seconds=s, risk_tier=tier) for s in (0, 1)]
        result = _run(events, action="kill_switch")
        alert = orjson.loads(result.alerts[0])
        assert result.commands == []
        assert "guardrail" in alert["guardrail_held"][0]


def test_kill_switch_action() -> None:
    events = [make_event("u", cost=0.8, seconds=s) for s in (0, 1)]
    command = orjson.loads(_run(events, action="kill_switch").commands[0])
    assert command["kind"] == "kill_switch"
    assert command["level"] is None


def test_duplicates_counted_once_within_a_day_and_forgotten_after_two() -> None:
    dedup = MemoryDedupStore()
    day_ms = 24 * 3600 * 1000
    t0 = int(BASE_TIME.timestamp() * 1000)
    dedup.remember("a", t0)
    assert dedup.seen("a", t0 + 1)
    assert dedup.seen("a", t0 + day_ms)  # still within 24 h
    for k in range(2, 6):
        dedup.remember(f"x{k}", t0 + k * day_ms)
    assert not dedup.seen("a", t0 + 5 * day_ms)


def test_every_record_ends_in_exactly_one_outcome() -> None:
    good = make_event("u", cost=0.1)
    records = [orjson.dumps(good), orjson.dumps(good), b"nope", orjson.dumps(make_event("u"))]
    result = replay_records(records, _pipeline())
    assert result.outcomes == {"accepted": 2, "duplicate": 1, "dead_lettered": 1}


def test_decode_returns_dead_letter_with_original_bytes() -> None:
    out = _pipeline().decode(b"{bad", BASE_TIME + timedelta(hours=1), offset=7)
    assert isinstance(out, DeadLetter)
    assert out.original == b"{bad" and out.source.offset == 7 and out.reason == "invalid_json"
    assert Outcome.DEAD_LETTERED.value == "dead_lettered"
