"""FinOps on the real broker: the worker publishes hourly rollups that add up to its events,
``spendfuse report --from-kafka`` turns them into the showback, and a late outcome settles the
cost per successful outcome on the dashboard and ``/metrics``."""

from __future__ import annotations

import base64
import time
import urllib.request
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from spendfuse.cli import main
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.dashboard import get_json
from tests.support.events import make_event
from tests.support.kafka import WorkerProcess, consume_until

pytestmark = pytest.mark.kafka


def _latest(records: list[dict]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for rec in records:
        out[rec["_key"]] = rec  # the topic is compacted by key: the latest record counts
    return out


def _sums(rows: dict[str, dict]) -> dict[tuple[str, str, str], float]:
    sums: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in rows.values():
        sums[(row["use_case_id"], row["cost_center"], row["hour_start"][:13])] += row["cost_usd"]
    return dict(sums)


def test_worker_rollups_add_up_and_report_the_showback(
    worker: WorkerProcess, kafka_bootstrap: str, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)  # a past day of its own, four hours of spend
    cases = {f"rollup-bot-{run}": "cc-100", f"rollup-claims-{run}": "cc-200"}
    events = []
    for i in range(24):
        for n, (use_case, cc) in enumerate(cases.items()):
            at = start + timedelta(minutes=10 * i, seconds=n)
            events.append(
                make_event(
                    use_case, cost=0.01 * (i % 5 + 1), at=at, cost_center=cc, business_unit="retail"
                )
            )
    # a late event for 08:00, arriving once 11:00 is open: the 08:00 row is published again
    late_case = next(iter(cases))
    events.append(
        make_event(
            late_case,
            cost=0.5,
            at=start + timedelta(minutes=3),
            cost_center="cc-100",
            business_unit="retail",
        )
    )
    expected: dict[tuple[str, str, str], float] = defaultdict(float)
    for e in events:
        expected[(e["use_case_id"], e["cost_center"], e["event_time"][:13])] += e[
            "allocated_cost_usd"
        ]
    with CostEventPublisher(kafka_bootstrap, envelope_max_events=1) as pub:
        for e in events:
            pub.publish(e)
        assert pub.flush() == 0

    def done(records: list[dict]) -> bool:
        got = _sums(_latest(records))
        return got.keys() == expected.keys() and all(
            abs(got[k] - v) < 1e-9 for k, v in expected.items()
        )

    records = consume_until(
        kafka_bootstrap,
        topics.COST_ROLLUPS,
        done,
        match=lambda r: r.get("use_case_id") in cases,
        timeout_s=90,
    )
    latest = _latest(records)
    eight = [
        r
        for r in latest.values()
        if r["use_case_id"] == late_case and r["hour_start"].startswith("2026-03-02T08")
    ]
    assert len(eight) == 1 and eight[0]["events"] == 7  # six on time and the late one
    assert len([r for r in records if r["_key"] == eight[0]["_key"]]) >= 2  # re-published
    assert all(r["business_unit"] == "retail" and r["tenant_id"] == "acme" for r in records)

    out = tmp_path / "report"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--from-kafka",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--start",
            "2026-03-02",
            "--end",
            "2026-03-03",
            "--period",
            "day",
            "--kind",
            "showback",
            "--format",
            "parquet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "showback_day.parquet").to_pylist()
    by_case: dict[str, float] = defaultdict(float)
    for row in rows:
        if row["x_UseCaseId"] in cases:
            by_case[row["x_UseCaseId"]] += row["BilledCost"]
    for use_case in cases:
        want = sum(v for (uc, _cc, _h), v in expected.items() if uc == use_case)
        assert by_case[use_case] == pytest.approx(want)


def _outcome(use_case: str, oid: str, status: str, at: datetime, **kw) -> dict:
    return {
        "schema_version": 1,
        "outcome_event_id": f"oe-{oid}-{uuid.uuid4().hex[:6]}",
        "event_time": at.isoformat().replace("+00:00", "Z"),
        "tenant_id": "acme",
        "use_case_id": use_case,
        "business_outcome_id": oid,
        "status": status,
        **kw,
    }


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_late_outcome_settles_the_cost_per_successful_outcome(
    worker: WorkerProcess, kafka_bootstrap: str
) -> None:
    run = uuid.uuid4().hex[:8]
    use_case = f"outcome-copilot-{run}"
    # event time no later than the other shared-worker tests' (2026-11-23): the worker keeps
    # dedup ids for the newest event day and the two before it
    start = datetime(2026, 11, 22, 6, tzinfo=UTC)
    spend = {"case-1": 0.30, "case-2": 0.50, "case-3": 0.20}
    with CostEventPublisher(kafka_bootstrap, envelope_max_events=1) as pub:
        for i, (oid, usd) in enumerate(spend.items()):
            pub.publish(
                make_event(
                    use_case, cost=usd, at=start + timedelta(minutes=i), business_outcome_id=oid
                )
            )
        pub.publish(make_event(use_case, cost=0.10, at=start + timedelta(minutes=5)))
        assert pub.flush() == 0
        time.sleep(2)  # the spend is counted first; the outcomes come hours later (event time)
        later = start + timedelta(hours=2)
        pub.publish_outcome(_outcome(use_case, "case-1", "resolved", later, value_usd=2.0))
        pub.publish_outcome(_outcome(use_case, "case-2", "failure", later))
        pub.publish_outcome(_outcome(use_case, "case-3", "success", later, value_usd=1.0))
        bad = _outcome(use_case, "case-4", "maybe", later)
        pub._producer.produce(topics.OUTCOMES, key=use_case.encode(), value=orjson.dumps(bad))
        assert pub.flush() == 0

    base = f"http://127.0.0.1:{worker.env['SPENDFUSE_WEB_PORT']}"
    deadline = time.monotonic() + 60
    view: dict = {}
    while time.monotonic() < deadline:
        snap = get_json(base + "/api/dashboard")
        view = next((o for o in snap["outcomes"] if o["use_case_id"] == use_case), {})
        if view and view["window"]["successes"] == 2 and view["window"]["failures"] == 1:
            break
        time.sleep(0.5)
    window = view["window"]
    assert window["spend_usd"] == pytest.approx(1.10)
    assert window["cost_per_success_usd"] == pytest.approx(0.55)  # $1.10 / 2 successes
    assert window["attributed_cost_per_success_usd"] == pytest.approx(0.25)  # ($0.3 + $0.2) / 2
    assert window["roi"] == pytest.approx((3.0 - 1.1) / 1.1, abs=1e-4)  # shown to 4 places

    def bad_of_mine(r: dict) -> bool:
        source = r.get("source") or {}
        original = base64.b64decode(r.get("original_b64") or "")
        return source.get("topic") == topics.OUTCOMES and use_case.encode() in original

    dead = consume_until(
        kafka_bootstrap,
        topics.COST_EVENTS_DLQ,
        lambda r: len(r) >= 1,
        match=bad_of_mine,
        timeout_s=30,
    )
    assert dead[0]["reason"] == "validation" and dead[0]["field"] == "status"

    with urllib.request.urlopen(base + "/metrics", timeout=10) as resp:
        metrics = resp.read().decode()
    assert _metric(metrics, 'spendfuse_outcome_events_total{status="resolved"}') >= 1
    assert _metric(metrics, "spendfuse_outcome_successes") >= 2
