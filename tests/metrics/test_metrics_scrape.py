"""``/metrics``, ``/healthz`` and ``/readyz`` of a real worker on the real broker, scraped while
events flow: every counter moves by what was sent. Also the dashboard's token-gated writes."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from spendfuse.producer import CostEventPublisher
from spendfuse.streams.web.health import LAG_INTERVAL_S
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess
from tests.support.rules import rules_env, spend_limit_yaml

TOKEN = "test-dashboard-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    proc = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("metrics-worker"),
        **rules_env(tmp_path_factory.mktemp("metrics-rules"), spend_limit_yaml(1.0)),
        SPENDFUSE_MAX_EVENT_BYTES="4096",
        SPENDFUSE_DASHBOARD__TOKEN=TOKEN,
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


def _url(worker: WorkerProcess, path: str) -> str:
    return f"http://127.0.0.1:{worker.env['SPENDFUSE_WEB_PORT']}{path}"


def scrape(worker: WorkerProcess) -> Samples:
    with urllib.request.urlopen(_url(worker, "/metrics"), timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        body = resp.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(body)
        for s in fam.samples
    }


def _get(s: Samples, name: str, **labels: str) -> float:
    return s.get((name, tuple(sorted(labels.items()))), 0.0)


def _request(
    worker: WorkerProcess, path: str, body: dict | None = None, token: str | None = None
) -> tuple[int, dict]:
    req = urllib.request.Request(
        _url(worker, path),
        method="POST" if body else "GET",
        data=orjson.dumps(body) if body else None,
    )
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_health_endpoints(worker: WorkerProcess) -> None:
    assert _request(worker, "/healthz") == (200, {"status": "alive"})
    status, ready = _request(worker, "/readyz")
    assert status == 200 and ready["ready"] is True
    assert ready["assigned_partitions"] == [0, 1, 2, 3]


def caught_up(worker: WorkerProcess, timeout_s: float = 90) -> Samples:
    """Scrape once the worker has read everything earlier tests left on the shared input topic:
    every partition's lag gauge at 0 and ``events_in`` still across a lag refresh."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        first = scrape(worker)
        lags = [v for (name, _), v in first.items() if name == "spendfuse_consumer_lag"]
        if len(lags) == 4 and sum(lags) == 0:
            time.sleep(LAG_INTERVAL_S + 1)
            again = scrape(worker)
            if _get(again, "spendfuse_events_in_total") == _get(first, "spendfuse_events_in_total"):
                return again
        time.sleep(1)
    raise AssertionError(f"the worker did not catch up in {timeout_s}s:\n{worker.log_tail()}")


def _wait_for(
    worker: WorkerProcess, before: Samples, name: str, at_least: float, **labels: str
) -> Samples:
    deadline = time.monotonic() + 60
    after = scrape(worker)
    while (
        _get(after, name, **labels) - _get(before, name, **labels) < at_least
        and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        after = scrape(worker)
    return after


def test_counters_move_as_events_flow(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    before = caught_up(worker)
    uc = unique("metrics")
    first = make_event(uc, cost=0.6, seconds=0)
    missing_tenant = make_event(uc)
    del missing_tenant["tenant_id"]
    with CostEventPublisher(kafka_bootstrap) as pub:
        pub.publish(first)
        pub.publish(first)  # duplicate
        pub.publish(make_event(uc, cost=0.6, seconds=1))  # $1.20 > $1: alert + degrade
        pub.publish_raw(b"{not json", key=uc.encode())
        pub.publish_raw(orjson.dumps(missing_tenant), key=uc.encode())
        assert pub.flush() == 0
    sent = 5
    after = _wait_for(worker, before, "spendfuse_events_in_total", sent)

    def delta(name: str, **labels: str) -> float:
        return _get(after, name, **labels) - _get(before, name, **labels)

    assert delta("spendfuse_events_in_total") == sent
    assert delta("spendfuse_events_accepted_total") == 2
    assert delta("spendfuse_events_duplicate_total") == 1
    assert delta("spendfuse_events_dead_lettered_total", reason="invalid_json") == 1
    assert delta("spendfuse_events_dead_lettered_total", reason="validation") == 1
    assert delta("spendfuse_spend_usd_total") == pytest.approx(1.2)
    assert delta("spendfuse_alerts_total", rule="spend_rate_limit", status="firing") == 1
    assert delta("spendfuse_commands_total", rule="spend_rate_limit", kind="degrade") == 1
    assert 1 <= delta("spendfuse_processing_seconds_count") <= sent  # once per batch taken
    assert 1 <= delta("spendfuse_detector_seconds_count") <= 3  # once per record that decides
    lags = {dict(k[1])["partition"] for k in after if k[0] == "spendfuse_consumer_lag"}
    assert lags == {"0", "1", "2", "3"}
    assert _get(after, "spendfuse_assigned_partitions") == 4


def test_rekeyed_record_is_counted(worker: WorkerProcess, kafka_bootstrap: str) -> None:
    # Every worker on the shared test topic re-keys such a record, so only this worker's own
    # counts are exact: it re-keys once and accepts one copy (later copies are duplicates).
    before = caught_up(worker)
    with CostEventPublisher(kafka_bootstrap) as pub:
        pub.publish_raw(orjson.dumps(make_event(unique("rekey"), cost=0.1)), key=b"wrong-key")
        assert pub.flush() == 0
    _wait_for(worker, before, "spendfuse_events_rekeyed_total", 1)
    after = _wait_for(worker, before, "spendfuse_events_accepted_total", 1)
    assert (
        _get(after, "spendfuse_events_rekeyed_total")
        - _get(before, "spendfuse_events_rekeyed_total")
        == 1
    )
    assert (
        _get(after, "spendfuse_events_accepted_total")
        - _get(before, "spendfuse_events_accepted_total")
        == 1
    )


def test_writes_need_the_token(worker: WorkerProcess) -> None:
    target = unique("lifted")
    lift = {"target_type": "use_case", "target_id": target, "author": "ana", "reason": "test"}
    assert _request(worker, "/api/lift", lift)[0] == 401
    assert _request(worker, "/api/lift", lift, token="wrong")[0] == 401
    status, body = _request(worker, "/api/lift", lift, token=TOKEN)
    assert status == 201, body
    deadline = time.monotonic() + 30
    recent: list[dict] = []
    while time.monotonic() < deadline:  # the control feed shows the operator's command
        recent = _request(worker, "/api/dashboard")[1]["commands_recent"]
        if any(c["command_id"] == body["published"] for c in recent):
            break
        time.sleep(0.5)
    shown = next(c for c in recent if c["command_id"] == body["published"])
    assert shown["issued_by"] == "operator:ana" and shown["kind"] == "restore"
    silence = {"fingerprint": "fp-x", "author": "ana", "comment": "load test", "duration_s": 600}
    assert _request(worker, "/api/silences", silence)[0] == 401
    assert _request(worker, "/api/silences", {**silence, "comment": ""}, token=TOKEN)[0] == 400
    status, created = _request(worker, "/api/silences", silence, token=TOKEN)
    assert status == 201, created
    stored = json.loads((Path(worker.env["SPENDFUSE_DATA_DIR"]) / "silences.json").read_text())
    assert [s["id"] for s in stored] == [created["silence_id"]]
    assert stored[0]["matchers"] == ['fingerprint="fp-x"']


@pytest.mark.parametrize(
    "path", ["/table/", "/table/use-case-state/", "/router/", "/graph/", "/stats/", "/assignment/"]
)
def test_fausts_own_table_router_and_stats_views_are_not_served(
    worker: WorkerProcess, path: str
) -> None:
    try:
        with urllib.request.urlopen(_url(worker, path), timeout=10) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert status == 404, path
