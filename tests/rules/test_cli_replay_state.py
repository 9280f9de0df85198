"""Backtest and silence CLIs, replay with both stages, bounded state, reload keeps state."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.rules.engine import AGGREGATES_KEY, Engine
from spendfuse.rules.metrics.aggregates import RING_HOURS
from spendfuse.schemas import CostEvent
from tests.rules.support import ruleset
from tests.support.events import BASE_TIME, make_event

RULES = """version: 1
tenants: [{tenant_id: acme, time_zone: America/New_York}]
budgets:
  - {name: acme-day, owner: "#finops", tenant_id: acme, period: day, limit_usd: 10,
     thresholds: [50, 100]}
rules:
  - name: pricey_call
    condition: {type: threshold, metric: event_cost_usd, window: event, value: 2}
    keep_firing_for: 1m
    severity: low
    actions: [{kind: degrade, level: L1, mode: shadow}]
"""


def _events(tmp_path: Path) -> Path:
    events = [
        make_event(f"uc{i % 2}", cost=c, seconds=60 * i)
        for i, c in enumerate([1.0, 3.0, 2.0, 2.0, 2.0])
    ]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events) + b"\n")
    return path


def test_backtest_prints_per_rule_table(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    result = CliRunner().invoke(
        main, ["rules", "backtest", str(tmp_path / "rules"), str(_events(tmp_path))]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()[2:]}
    assert rows["budget:acme-day"][1:6] == ["2", "0", "0", "0", "0"]  # 50% and 100%
    assert rows["budget:acme-day"][6:8] == ["2026-11-23T09:02:00.000Z", "2026-11-23T09:04:00.000Z"]
    assert rows["pricey_call"][1:6] == ["1", "1", "0", "2", "0"]  # fire+restore, both shadow
    assert "spend_rate_limit" not in rows


def test_replay_runs_the_tenant_stage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES)
    monkeypatch.setenv("SPENDFUSE_RULES_DIR", str(tmp_path / "rules"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["replay", str(_events(tmp_path)), "--out", str(out)])
    assert result.exit_code == 0, result.output
    alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    budget = [a for a in alerts if a["rule"] == "budget:acme-day"]
    assert [a["evidence"]["threshold"] for a in budget] == [50, 100]
    assert budget[0]["annotations"]["period_ends_local"] == "2026-11-24T00:00:00-05:00"


def test_silence_cli_add_list_expire(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPENDFUSE_DATA_DIR", str(tmp_path))
    cli = CliRunner()
    added = cli.invoke(
        main,
        [
            "silence",
            "add",
            "--matcher",
            'use_case_id="bot"',
            "--for",
            "2h",
            "--author",
            "ana",
            "--comment",
            "deploy",
        ],
    )
    assert added.exit_code == 0, added.output
    sid = added.output.split()[0]
    listed = cli.invoke(main, ["silence", "list"]).output
    assert sid in listed and 'use_case_id="bot"' in listed and "ana: deploy" in listed
    assert cli.invoke(main, ["silence", "expire", sid]).exit_code == 0
    assert sid not in cli.invoke(main, ["silence", "list"]).output
    bad = cli.invoke(
        main,
        [
            "silence",
            "add",
            "--matcher",
            'a="b"',
            "--for",
            "soon",
            "--author",
            "a",
            "--comment",
            "c",
        ],
    )
    assert bad.exit_code != 0 and "bad duration" in bad.output


def test_state_is_bounded_and_json_roundtrips() -> None:
    engine, state = Engine(ruleset=ruleset()), {}
    for i in range(RING_HOURS + 60):  # more hours than the ring, more traces than kept
        for j in range(3):
            event = make_event(
                "bot", at=BASE_TIME + timedelta(hours=i, minutes=j), business_outcome_id=f"o{i}-{j}"
            )
            engine.process(CostEvent.model_validate(event), state)
        state = orjson.loads(orjson.dumps(state))  # what a Faust table does to it
    agg = state[AGGREGATES_KEY]
    assert len(agg["h"]) == RING_HOURS
    # ids are kept for their retention in event time, not by count: the last 30 minutes of
    # traces (3 events at minutes 0-2 of the last hour) and 24 hours of outcomes
    assert 1 <= len(agg["tr"]) <= 3
    assert len(agg["oc"]) == 24 * 3


def test_reprocessing_yields_identical_ids_and_reload_keeps_state() -> None:
    events = [
        CostEvent.model_validate(make_event("agent", trace_id="t", step_number=n, seconds=n))
        for n in range(1, 13)
    ]

    def decide(engine: Engine, swap_at: int | None = None) -> list[str]:
        state: dict = {}
        ids = []
        for n, event in enumerate(events):
            if n == swap_at:
                engine.swap(ruleset())  # a reload mid-incident
            out = engine.process(event.model_copy(), state)
            ids += [a.alert_id for a in out.alerts] + [c.command_id for c in out.commands]
        return ids

    first = decide(Engine(ruleset=ruleset()))
    # session over $1 at step 2; step limit at 11: alert + kill switch; spend over $5 in the
    # minute: alert + L1 degrade
    assert len(first) == 5
    assert decide(Engine(ruleset=ruleset())) == first
    assert decide(Engine(ruleset=ruleset()), swap_at=11) == first
