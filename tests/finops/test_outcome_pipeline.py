"""Outcomes in the shared pipeline (what the worker's outcome agent and ``spendfuse replay``
run): cost events feed each use case's ledger, outcome records (late ones too) settle it, bad
ones come back as dead letters with the cost events' reason codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.dedup import MemoryDedupStore
from spendfuse.finops.outcomes import ledger_view
from spendfuse.pipeline import OUTCOMES_KEY, Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine
from spendfuse.rules.ruleset import RuleSet
from tests.support.events import BASE_TIME, make_event

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _cost(usd: float, outcome: str | None, minutes: float) -> bytes:
    at = BASE_TIME + timedelta(minutes=minutes)
    return orjson.dumps(make_event("copilot", cost=usd, at=at, business_outcome_id=outcome))


def _outcome(oid: str, status: str, hours: float, value: float | None = None, **kw) -> bytes:
    body = {
        "schema_version": 1,
        "outcome_event_id": f"oe-{oid}-{hours}",
        "event_time": (BASE_TIME + timedelta(hours=hours)).isoformat(),
        "tenant_id": "acme",
        "use_case_id": "copilot",
        "business_outcome_id": oid,
        "status": status,
        "value_usd": value,
    }
    body.update(kw)
    return orjson.dumps(body)


def _pipeline() -> Pipeline:
    return Pipeline(Engine(RuleSet()), outcome_ledger=True)


COSTS = [
    _cost(0.30, "case-1", 0),
    _cost(0.20, "case-1", 5),
    _cost(0.50, "case-2", 10),
    _cost(0.40, "case-3", 15),
    _cost(0.10, None, 20),  # spend with no outcome id is part of what successes cost
]
OUTCOMES = [
    _outcome("case-1", "resolved", 30, value=2.0),  # resolved 30 hours later
    _outcome("case-2", "failure", 31),
    _outcome("case-3", "success", 32, value=1.0),
]


def test_cost_per_successful_outcome_and_roi_from_late_outcomes() -> None:
    result = replay_records(COSTS, _pipeline(), NOW, outcomes=OUTCOMES)
    window = result.outcome_views["copilot"]["window"]
    assert (window["successes"], window["failures"]) == (2, 1)
    assert window["spend_usd"] == pytest.approx(1.5)
    assert window["cost_per_success_usd"] == pytest.approx(0.75)  # $1.50 / 2
    assert window["attributed_cost_per_success_usd"] == pytest.approx(0.45)  # ($0.5 + $0.4) / 2
    assert window["roi"] == pytest.approx((3.0 - 1.5) / 1.5)
    assert result.outcome_views["copilot"]["pending_outcomes"] == 0


def test_an_outcome_read_twice_or_reordered_counts_once() -> None:
    once = replay_records(COSTS, _pipeline(), NOW, outcomes=OUTCOMES).outcome_views
    again = OUTCOMES[::-1] + OUTCOMES
    twice = replay_records(COSTS, _pipeline(), NOW, outcomes=again).outcome_views
    assert twice == once


def test_outcomes_before_their_spend_settle_the_same() -> None:
    pipeline, states, dedup = _pipeline(), {}, MemoryDedupStore()
    for raw in OUTCOMES:
        assert pipeline.run_outcome(raw, NOW, states).applied
    states = orjson.loads(orjson.dumps(states))  # through the table's plain data
    for raw in COSTS:
        pipeline.run_record(raw, NOW, dedup, states)
    expected = replay_records(COSTS, _pipeline(), NOW, outcomes=OUTCOMES).outcome_views["copilot"]
    assert ledger_view(states["copilot"][OUTCOMES_KEY]) == expected


@pytest.mark.parametrize(
    ("raw", "reason", "field"),
    [
        (b"{not json", "invalid_json", None),
        (_outcome("case-9", "maybe", 1), "validation", "status"),
        (_outcome("case-9", "success", 1, value=-3.0), "negative_value", "value_usd"),
        (orjson.dumps({"schema_version": 1, "outcome_event_id": "x"}), "validation", None),
    ],
)
def test_bad_outcomes_are_dead_lettered_with_a_reason(raw: bytes, reason: str, field) -> None:
    result = _pipeline().run_outcome(raw, NOW, {}, topic="spendfuse.outcomes", offset=7)
    dead = result.dead_letter
    assert dead is not None and dead.reason == reason
    assert dead.source.topic == "spendfuse.outcomes" and dead.source.offset == 7
    if field:
        assert dead.field == field and field in dead.error


def test_no_ledger_while_outcome_ledgers_are_off() -> None:
    pipeline, states, dedup = Pipeline(Engine(RuleSet())), {}, MemoryDedupStore()
    for raw in COSTS:
        pipeline.run_record(raw, NOW, dedup, states)
    result = pipeline.run_outcome(OUTCOMES[0], NOW, states)
    assert result.outcome is not None and not result.applied
    assert OUTCOMES_KEY not in states["copilot"]  # the state does not grow with outcome ids
    assert pipeline.run_outcome(b"{", NOW, states).dead_letter is not None  # still checked


def test_an_outcome_under_another_key_is_left_for_its_own_partition() -> None:
    result = _pipeline().run_outcome(OUTCOMES[0], NOW, {}, owns=lambda o: False)
    assert result.foreign and not result.applied


def test_replay_cli_writes_outcomes(tmp_path) -> None:
    events, outcomes = tmp_path / "events.jsonl", tmp_path / "outcomes.jsonl"
    events.write_bytes(b"\n".join(COSTS) + b"\n")
    outcomes.write_bytes(b"\n".join(OUTCOMES) + b"\nnot json\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        ["replay", str(events), "--out", str(out), "--outcomes", str(outcomes)],
        env={"SPENDFUSE_RULES_DEFAULT_PACK": "false", "SPENDFUSE_OUTCOME_LEDGER": "true"},
    )
    assert result.exit_code == 0, result.output
    view = orjson.loads((out / "outcomes.json").read_bytes())["copilot"]["window"]
    assert view["cost_per_success_usd"] == pytest.approx(0.75)
    dead = [orjson.loads(x) for x in (out / "dead_letters.jsonl").read_bytes().splitlines()]
    assert [d["reason"] for d in dead] == ["invalid_json"]
    rollups = [orjson.loads(x) for x in (out / "rollups.jsonl").read_bytes().splitlines()]
    assert sum(r["cost_usd"] for r in rollups) == pytest.approx(1.5)
