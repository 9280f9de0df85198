"""The foundation's decision path on the real broker: events in, alerts/commands/DLQ out."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess, consume_until


def _for(use_case: str):
    return lambda rec: rec.get("use_case_id") == use_case


def _count_at_least(n: int):
    return lambda recs: len(recs) >= n


def test_overspend_produces_alert_and_command(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("support-bot")
    for i in range(3):
        publisher.publish(make_event(uc, cost=0.6, seconds=i))
    assert publisher.flush() == 0

    alerts = consume_until(kafka_bootstrap, topics.ALERTS, _count_at_least(1), match=_for(uc))
    commands = consume_until(kafka_bootstrap, topics.CONTROL, _count_at_least(1), match=_for(uc))

    assert len(alerts) == 1, alerts
    alert = alerts[0]
    assert alert["status"] == "firing"
    assert alert["tenant_id"] == "acme"
    # a clock-minute threshold decides at the event that crosses it, in one record or several
    assert alert["fired_at"] == "2026-11-23T09:00:01.000Z"  # event time of the 2nd event
    assert alert["evidence"]["value"] == 1.2
    assert len(commands) == 1, commands
    command = commands[0]
    assert command["kind"] == "degrade"
    assert command["level"] == "L1"
    assert command["target"] == {"type": "use_case", "id": uc}
    # the command stays in the scope that tripped it: this tenant, this use case, low risk
    assert command["_key"] == f"use_case:{uc}|tenant=acme|use_case={uc}|risk=low"
    assert command["decided_at"] == alert["fired_at"]  # event time: evidence
    assert command["issued_at"] > "2026-11-24" and command["version"] > 0  # publisher's clock
    assert alert["actions_taken"] == [command["command_id"]]


def test_guardrail_holds_back_command_on_high_risk(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("claims-triage")
    low = unique("faq")
    for i in range(3):
        publisher.publish(make_event(uc, cost=0.6, seconds=i, risk_tier="high"))
    for i in range(3):  # a low-risk sentinel: once its command is out, the high one would be too
        publisher.publish(make_event(low, cost=0.6, seconds=i))
    publisher.flush()

    alerts = consume_until(kafka_bootstrap, topics.ALERTS, _count_at_least(1), match=_for(uc))
    consume_until(kafka_bootstrap, topics.CONTROL, _count_at_least(1), match=_for(low))
    commands = consume_until(
        kafka_bootstrap, topics.CONTROL, lambda _r: True, match=_for(uc), timeout_s=5
    )
    assert alerts[0]["guardrail_held"], alerts[0]
    assert "high-risk" in alerts[0]["guardrail_held"][0]
    assert commands == []


def test_bad_events_are_dead_lettered_while_good_ones_flow(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("bad-input")
    good = [make_event(uc, cost=0.6, seconds=i) for i in range(3)]
    missing_tenant = make_event(uc)
    del missing_tenant["tenant_id"]
    bad: dict[str, bytes] = {
        "invalid_json": b"{not json at all",
        "validation": orjson.dumps(missing_tenant),
        "unknown_schema_version": orjson.dumps(make_event(uc, schema_version=99)),
        "oversized": orjson.dumps(make_event(uc, padding="x" * 5000)),
    }
    key = uc.encode()
    publisher.publish_raw(bad["invalid_json"], key=key)
    publisher.publish(good[0])
    publisher.publish_raw(bad["validation"], key=key)
    publisher.publish(good[1])
    publisher.publish_raw(bad["unknown_schema_version"], key=key)
    publisher.publish_raw(bad["oversized"], key=key)
    publisher.publish(good[2])
    publisher.flush()

    dlq = consume_until(
        kafka_bootstrap,
        topics.COST_EVENTS_DLQ,
        _count_at_least(4),
        match=lambda r: r.get("key_b64") == base64.b64encode(key).decode(),
    )
    by_reason: dict[str, Any] = {r["reason"]: r for r in dlq}
    assert set(by_reason) == set(bad)
    for reason, raw in bad.items():
        assert base64.b64decode(by_reason[reason]["original_b64"]) == raw
        assert by_reason[reason]["source"]["topic"] == topics.COST_EVENTS
        assert by_reason[reason]["source"]["offset"] is not None
    assert by_reason["validation"]["field"] == "tenant_id"
    assert "tenant_id: Field required" in by_reason["validation"]["error"]
    assert by_reason["unknown_schema_version"]["field"] == "schema_version"

    alerts = consume_until(kafka_bootstrap, topics.ALERTS, _count_at_least(1), match=_for(uc))
    assert alerts[0]["evidence"]["value"] == 1.2  # good[0] + good[1]; nothing bad counted


def test_duplicate_cost_event_id_is_counted_once(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("dedup")
    first = make_event(uc, cost=0.6, seconds=0)
    second = make_event(uc, cost=0.6, seconds=2)
    publisher.publish(first)
    publisher.publish(first)  # a producer retry: same cost_event_id, must count once
    publisher.publish(second)
    publisher.flush()

    alerts = consume_until(kafka_bootstrap, topics.ALERTS, _count_at_least(1), match=_for(uc))
    assert len(alerts) == 1
    # Counted twice, the duplicate would have tripped the $1 limit at 09:00:00 with $1.20.
    assert alerts[0]["fired_at"] == "2026-11-23T09:00:02.000Z"
    assert alerts[0]["evidence"]["value"] == 1.2


def test_event_under_another_key_is_rekeyed_and_counted(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("rekey")
    for i in range(2):
        publisher.publish_raw(orjson.dumps(make_event(uc, cost=0.6, seconds=i)), key=b"wrong")
    publisher.flush()
    alerts = consume_until(kafka_bootstrap, topics.ALERTS, _count_at_least(1), match=_for(uc))
    assert alerts[0]["evidence"]["value"] == 1.2
