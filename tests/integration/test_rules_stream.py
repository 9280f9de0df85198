"""Rule files in a live worker: a tenant budget through the tenant stage, and hot reload."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess, consume_until

TENANT = unique("tenant")

RULES = f"""version: 1
tenants: [{{tenant_id: {TENANT}, time_zone: Asia/Tokyo}}]
budgets:
  - {{name: stream-day, owner: "#finops", tenant_id: {TENANT}, period: day, limit_usd: 2,
     thresholds: [50, 100]}}
rules:
  - name: before_reload
    scope: {{tenant_id: {TENANT}}}
    condition: {{type: threshold, metric: event_cost_usd, window: event, value: 1000}}
    severity: low
"""


@pytest.fixture(scope="module")
def rules_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, Path]]:
    tmp = tmp_path_factory.mktemp("rules-worker")
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    (rules_dir / "stream.yaml").write_text(RULES)
    proc = WorkerProcess(
        kafka_bootstrap, tmp, SPENDFUSE_RULES_DIR=str(rules_dir), SPENDFUSE_RULES_RELOAD_S="0.5"
    ).start()
    try:
        yield proc, rules_dir
    finally:
        proc.stop()


def _wait_log(proc: WorkerProcess, text: str, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while proc.log_tail(1_000_000).count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the worker log:\n{proc.log_tail()}"
        time.sleep(0.2)


def test_tenant_budget_alerts_across_use_cases(
    rules_worker: tuple[WorkerProcess, Path], kafka_bootstrap: str
) -> None:
    with CostEventPublisher(kafka_bootstrap) as pub:
        for i in range(4):  # four use cases, so four keys spread over partitions
            pub.publish(make_event(unique(f"uc{i}"), tenant_id=TENANT, cost=0.5, seconds=i))
    alerts = consume_until(
        kafka_bootstrap,
        topics.ALERTS,
        lambda r: len(r) >= 2,
        match=lambda r: r.get("rule") == "budget:stream-day" and r.get("tenant_id") == TENANT,
    )
    assert sorted(a["evidence"]["threshold"] for a in alerts) == [50, 100]
    assert {a["use_case_id"] for a in alerts} == {"*"}
    assert alerts[0]["annotations"]["period_ends_local"] == "2026-11-24T00:00:00+09:00"


def test_rules_reload_without_restart_and_bad_files_are_refused(
    rules_worker: tuple[WorkerProcess, Path], kafka_bootstrap: str
) -> None:
    proc, rules_dir = rules_worker
    tenant2 = unique("tenant")
    new_rule = (
        RULES.replace("before_reload", "after_reload")
        .replace("value: 1000", "value: 0.5")
        .replace(f"tenant_id: {TENANT}}}", f"tenant_id: {tenant2}}}")
    )
    (rules_dir / "stream.yaml").write_text(new_rule)
    _wait_log(proc, "rules reloaded from", 1)
    (rules_dir / "broken.yaml").write_text("version: 1\nrules: [{name: x, severty: low}]\n")
    _wait_log(proc, "previous rules keep running", 1)
    assert "broken.yaml:2:" in proc.log_tail(1_000_000)
    with CostEventPublisher(kafka_bootstrap) as pub:
        pub.publish(make_event(unique("uc"), tenant_id=tenant2, cost=0.8))
    alerts = consume_until(
        kafka_bootstrap,
        topics.ALERTS,
        lambda r: len(r) >= 1,
        match=lambda r: r.get("tenant_id") == tenant2,
    )
    assert [a["rule"] for a in alerts] == ["after_reload"]
