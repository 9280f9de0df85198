"""``spendfuse explain``: from replayed files, and from the alerts and events topics."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from spendfuse.cli import main
from spendfuse.schemas.alert import Alert, Evidence, TraceContribution
from spendfuse.schemas.codec import encode
from spendfuse.schemas.envelope import encode_envelope
from tests.support.events import BASE_TIME, make_event


def scene(run: str) -> tuple[Alert, list[dict]]:
    events = [make_event(f"bot-{run}", seconds=s, trace_id=f"tr-{s % 2}") for s in range(6)]
    events.append(make_event(f"bot-{run}", seconds=7, trace_id="[/x] <!channel>"))
    alert = Alert(
        alert_id=f"al-{run}",
        fingerprint=f"spend_rate_limit/acme/bot-{run}",
        rule="spend_rate_limit",
        status="firing",
        severity="high",
        tenant_id="acme",
        use_case_id=f"bot-{run}",
        summary="over [red]limit[/]",
        fired_at=BASE_TIME,
        evidence=Evidence(
            metric="spend_usd_per_window",
            value=3.6,
            threshold=2.0,
            baseline=0.5,
            window_s=60,
            top_traces=[TraceContribution(trace_id="tr-1", cost_usd=1.8)],
            sample_event_ids=[events[0]["cost_event_id"], events[6]["cost_event_id"]],
        ),
    )
    return alert, events


def test_explain_from_replayed_files_prints_events_baseline_and_rule(tmp_path: Path) -> None:
    alert, events = scene("f")
    (tmp_path / "alerts.jsonl").write_bytes(encode(alert) + b"\n")
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    result = CliRunner().invoke(
        main,
        [
            "explain",
            alert.alert_id,
            "--alerts",
            str(tmp_path / "alerts.jsonl"),
            "--events",
            str(tmp_path / "events.jsonl"),
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "baseline 0.5" in out and "threshold 2.0" in out and "over [red]limit[/]" in out
    assert "top trace tr-1: $1.8" in out
    shown = [e for e in events if e["cost_event_id"][:12] in out]
    # the three events of trace tr-1, the sample of tr-0, and the hostile-looking sample
    assert len(shown) == 5 and "[/x] <!channel>" in out
    missing = CliRunner().invoke(
        main, ["explain", "nope", "--alerts", str(tmp_path / "alerts.jsonl")]
    )
    assert missing.exit_code == 1 and "no alert nope" in missing.output


def test_explain_reads_the_alerts_and_events_topics(kafka_bootstrap: str) -> None:
    run = uuid.uuid4().hex[:8]
    alert, events = scene(run)
    alerts_topic, events_topic = f"test.explain.alerts.{run}", f"test.explain.events.{run}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics(
        [NewTopic(alerts_topic, 1, 1), NewTopic(events_topic, 2, 1)]
    ).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    at_ms = int(BASE_TIME.timestamp() * 1000)
    producer.produce(
        events_topic, value=encode_envelope(orjson.dumps(e) for e in events[:4]), timestamp=at_ms
    )
    for e in events[4:]:
        producer.produce(events_topic, value=orjson.dumps(e), timestamp=at_ms)
    producer.produce(alerts_topic, value=encode(alert))
    assert producer.flush(30) == 0
    result = CliRunner().invoke(
        main,
        [
            "explain",
            alert.alert_id,
            "--bootstrap-servers",
            kafka_bootstrap,
            "--alerts-topic",
            alerts_topic,
            "--events-topic",
            events_topic,
        ],
    )
    assert result.exit_code == 0, result.output
    assert sum(e["cost_event_id"][:12] in result.output for e in events) == 5
