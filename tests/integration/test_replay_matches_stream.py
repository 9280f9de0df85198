"""``spendfuse replay`` and the live worker reach the same alerts, commands and hourly rollups."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.schemas.command import ControlCommand
from spendfuse.schemas.rollup import CostRollup, rollup_key
from tests.integration.conftest import REPLAY_TENANT, WORKER_RULES
from tests.support.fixture_stream import load_fixture
from tests.support.kafka import WorkerProcess, consume_until


def _canonical(rows: list[dict]) -> list[bytes]:
    return sorted(
        orjson.dumps({k: v for k, v in r.items() if k != "_key"}, option=orjson.OPT_SORT_KEYS)
        for r in rows
    )


def _decided(rows: list[dict]) -> list[dict]:
    return [ControlCommand.model_validate(r).decision_view() for r in rows]


def test_replay_and_stream_agree(
    worker: WorkerProcess, kafka_bootstrap: str, tmp_path: Path, monkeypatch
) -> None:
    run_id = uuid.uuid4().hex[:8]
    # faq-bot gets a tenant of its own, so that the tenant stage (its budget) is compared too.
    # One use case: its records keep their order on one partition, as in the file (a tenant
    # fed from several partitions sees their records interleaved in arrival order).
    records = [
        r.replace(b'"tenant_id":"acme"', f'"tenant_id":"{REPLAY_TENANT}"'.encode())
        if b'"use_case_id":"faq-bot-' in r
        else r
        for r in load_fixture(run_id)
    ]
    events_file = tmp_path / "events.jsonl"
    events_file.write_bytes(b"\n".join(records) + b"\n")

    for name, value in WORKER_RULES.items():  # the worker's rules
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["replay", str(events_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    replay_alerts = [orjson.loads(x) for x in (out / "alerts.jsonl").read_bytes().splitlines()]
    replay_commands = [orjson.loads(x) for x in (out / "commands.jsonl").read_bytes().splitlines()]
    assert {a["status"] for a in replay_alerts} == {"firing", "resolved"}
    assert any(a["guardrail_held"] for a in replay_alerts)
    assert {c["kind"] for c in replay_commands} == {"degrade", "restore"}
    tenant_stage = [a for a in replay_alerts if a["rule"] == "budget:replay-tenant-day"]
    assert [a["evidence"]["threshold"] for a in tenant_stage] == [50, 100]

    with CostEventPublisher(kafka_bootstrap) as pub:
        for raw in records:
            key = orjson.loads(raw)["use_case_id"].encode() if raw.endswith(b"}") else b"x"
            pub.publish_raw(raw, key=key)

    def mine(rec: dict) -> bool:
        return str(rec.get("use_case_id", "")).endswith(run_id) or (
            rec.get("tenant_id") == REPLAY_TENANT
        )

    stream_alerts = consume_until(
        kafka_bootstrap, topics.ALERTS, lambda r: len(r) >= len(replay_alerts), match=mine
    )
    stream_commands = consume_until(
        kafka_bootstrap, topics.CONTROL, lambda r: len(r) >= len(replay_commands), match=mine
    )
    assert _canonical(stream_alerts) == _canonical(replay_alerts)
    # the stream's commands carry what the publisher stamped (its clock, a version): compare
    # what the rule decided
    assert _canonical(_decided(stream_commands)) == _canonical(_decided(replay_commands))

    # rollups: replay's rows are what the compacted topic keeps (the latest record per key)
    replay_rollups = {
        rollup_key(CostRollup.model_validate(r)).decode(): r
        for r in map(orjson.loads, (out / "rollups.jsonl").read_bytes().splitlines())
        if mine(r)
    }
    assert replay_rollups

    def _view(rows: dict[str, dict]) -> dict[str, tuple[float, int]]:
        return {k: (round(r["cost_usd"], 9), r["events"]) for k, r in rows.items()}

    def caught_up(records: list[dict]) -> bool:
        latest = {r["_key"]: r for r in records}
        return _view(latest) == _view(replay_rollups)

    stream_rollups = consume_until(
        kafka_bootstrap, topics.COST_ROLLUPS, caught_up, match=mine, timeout_s=90
    )
    assert caught_up(stream_rollups)
