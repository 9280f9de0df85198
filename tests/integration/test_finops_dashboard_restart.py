"""A restarted worker's dashboard shows the budget spend it showed before the restart.

Budget spend is summed from the hourly rollups the worker publishes, which the dashboard reads
back from the start of the compacted rollups topic on every start; the restarted worker handles
no event at all here (its offsets were committed), so what it shows can only come from there.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.dashboard import get_json
from tests.support.events import make_event
from tests.support.kafka import WorkerProcess
from tests.support.rules import temp_rules_env
from tests.support.waiting import wait_for

pytestmark = pytest.mark.kafka

RUN = uuid.uuid4().hex[:8]
TENANT = f"restart-{RUN}"
BUDGETS = f"""version: 1
tenants: [{{tenant_id: {TENANT}, time_zone: Europe/Berlin}}]
budgets:
  - {{name: restart-day-{RUN}, owner: "#finops", tenant_id: {TENANT}, period: day,
     limit_usd: 10}}
  - {{name: restart-bot-prod-day-{RUN}, owner: "#bots", tenant_id: {TENANT}, use_case_id: bot,
     environment: prod, period: day, limit_usd: 5}}
quotas:
  - {{name: restart-calls-{RUN}, owner: "#bots", tenant_id: {TENANT}, period: day,
     measure: calls, limit: 1000}}
  - {{name: restart-steps-{RUN}, owner: "#bots", tenant_id: {TENANT}, period: day,
     measure: step_events, limit: 1000}}
"""
RULES = temp_rules_env(BUDGETS, default_pack=False)
# event times no later than the shared worker's tests' (2026-11-23): it reads these events too
START = datetime(2026, 11, 22, 8, tzinfo=UTC)


def _events() -> list[dict]:
    events = []
    for i in range(18):  # three hours, two use cases
        at = START + timedelta(minutes=10 * i)
        events.append(make_event("bot", cost=0.05 * (i % 4 + 1), at=at, tenant_id=TENANT))
        events.append(
            make_event("crawler", cost=0.03, at=at + timedelta(seconds=5), tenant_id=TENANT)
        )
    events.append(  # a dev event: the tenant's budget counts it, the prod bot budget does not
        make_event(
            "bot", cost=0.4, at=START + timedelta(hours=1), environment="dev", tenant_id=TENANT
        )
    )
    # a late event for 08:00, once 10:00 is open: the 08:00 row is published again, replaced
    events.append(make_event("bot", cost=0.7, at=START + timedelta(minutes=3), tenant_id=TENANT))
    return events


def _budgets(worker: WorkerProcess) -> tuple[dict[str, dict], dict]:
    snap = get_json(f"http://127.0.0.1:{worker.env['SPENDFUSE_WEB_PORT']}/api/dashboard")
    return {b["name"]: b for b in snap["budgets"] if b["tenant_id"] == TENANT}, snap


def _shows(worker: WorkerProcess, want: dict[str, float]) -> dict[str, dict] | None:
    rows, _snap = _budgets(worker)
    got = {name: rows.get(name, {}).get("spent") for name in want}
    ok = all(got[n] is not None and abs(got[n] - v) < 1e-6 for n, v in want.items())
    return rows if ok else None


def _caught_up(bootstrap: str, group: str) -> bool:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = consumer.list_topics(topics.COST_EVENTS, timeout=10).topics[topics.COST_EVENTS]
        tps = [TopicPartition(topics.COST_EVENTS, p) for p in parts.partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
        for tp in tps:
            _low, high = consumer.get_watermark_offsets(tp, timeout=10)
            if high > 0 and committed.get(tp.partition, -1) < high:
                return False
        return True
    finally:
        consumer.close()


def test_a_restarted_workers_dashboard_shows_the_same_budget_spend(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app_id = f"spendfuse-dash-restart-{RUN}"
    events = _events()
    total = sum(e["allocated_cost_usd"] for e in events)
    bot_prod = sum(
        e["allocated_cost_usd"]
        for e in events
        if e["use_case_id"] == "bot" and e["environment"] == "prod"
    )
    want = {
        f"restart-day-{RUN}": total,
        f"restart-bot-prod-day-{RUN}": bot_prod,
        f"restart-calls-{RUN}": float(len(events)),
    }
    first = WorkerProcess(kafka_bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **RULES).start()
    try:
        with CostEventPublisher(kafka_bootstrap, envelope_max_events=1) as pub:
            for event in events:
                pub.publish(event)
            assert pub.flush() == 0
        before = wait_for(lambda: _shows(first, want), "the budget spend before the restart", 90)
        wait_for(lambda: _caught_up(kafka_bootstrap, app_id), "the worker to commit", 90)
    finally:
        first.stop()
    steps = before[f"restart-steps-{RUN}"]
    assert (steps["spent"], steps["status"]) == (None, "not in rollups")
    assert before[f"restart-day-{RUN}"]["period_start"] == "2026-11-21T23:00:00.000Z"  # Berlin

    restarted = WorkerProcess(kafka_bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **RULES).start()
    try:
        after = wait_for(lambda: _shows(restarted, want), "the same spend after the restart", 90)
        _rows, snap = _budgets(restarted)
    finally:
        restarted.stop()
    assert snap["events_seen"] == 0  # nothing re-handled: the spend came from the rollups topic
    for name in want:
        assert after[name]["spent"] == pytest.approx(before[name]["spent"])
        assert after[name]["percent"] == before[name]["percent"]
        assert after[name]["period_start"] == before[name]["period_start"]
    assert after[f"restart-steps-{RUN}"]["status"] == "not in rollups"
