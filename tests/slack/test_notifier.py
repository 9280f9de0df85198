"""The Slack notifier on the real broker, talking slack-sdk to a local fake of Slack's Web API.

Each test uses its own alerts topic, ledger topic and consumer group.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from slack_sdk import WebClient

from spendfuse.rules.silences import Silence, new_silence
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import encode
from spendfuse.streams.notify import Notifier, RetryPolicy, SlackDelivery
from spendfuse.streams.slack_message import default_router
from tests.slack.fake_slack import FakeSlack
from tests.support.waiting import wait_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_alert(n: int, status: str = "firing", *, run: str) -> Alert:
    return Alert(
        alert_id=f"{run}-a{n}",
        fingerprint=f"spend_rate_limit/acme/uc{n}-{run}",
        rule="spend_rate_limit",
        status=status,
        severity="high",
        tenant_id="acme",
        use_case_id=f"uc{n}-{run}",
        summary=f"Spend on uc{n} over its limit",
        evidence=Evidence(metric="spend_usd_per_window", value=6.0 + n, threshold=5.0),
        fired_at=T0 + timedelta(seconds=n),
        resolved_at=T0 + timedelta(minutes=5) if status == "resolved" else None,
    )


@pytest.fixture
def topics(kafka_bootstrap: str) -> dict[str, str]:
    run = uuid.uuid4().hex[:8]
    names = {
        "alerts": f"test.alerts.{run}",
        "ledger": f"test.ledger.{run}",
        "group": f"notify-{run}",
        "run": run,
    }
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    for future in admin.create_topics([NewTopic(names["alerts"], 1, 1)]).values():
        future.result(30)
    return names


def publish(kafka_bootstrap: str, topic: str, alerts: list[Alert]) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for alert in alerts:
        producer.produce(topic, key=alert.fingerprint.encode(), value=encode(alert))
    assert producer.flush(30) == 0


@contextmanager
def running_notifier(
    kafka_bootstrap: str,
    slack: FakeSlack,
    names: dict[str, str],
    silences: list[Silence] | None = None,
) -> Iterator[tuple[Notifier, SlackDelivery]]:
    stop = threading.Event()
    client = WebClient(token=slack.token, base_url=slack.base_url, timeout=5, retry_handlers=[])
    delivery = SlackDelivery(
        client, default_router("#ai-finops"), stop, RetryPolicy(base_s=0.05, max_s=0.5)
    )
    notifier = Notifier(
        kafka_bootstrap,
        delivery,
        topic=names["alerts"],
        ledger_topic=names["ledger"],
        group_id=names["group"],
        silences=(lambda: silences or []),
    )
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield notifier, delivery
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def test_rate_limits_and_5xx_are_retried_and_resolution_updates_the_thread(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    run = topics["run"]
    with FakeSlack() as slack:
        slack.script.extend([(429, {"Retry-After": "1"}), (500, {}), (503, {})])
        publish(
            kafka_bootstrap,
            topics["alerts"],
            [
                make_alert(1, run=run),
                make_alert(2, run=run),
                make_alert(1, "resolved", run=run),
                make_alert(1, run=run),  # a worker restart re-issued the same firing alert
            ],
        )
        with running_notifier(kafka_bootstrap, slack, topics) as (notifier, delivery):
            wait_for(
                lambda: notifier.counts["delivered"] + notifier.counts["skipped"] >= 4,
                "four alerts handled",
            )

        top = slack.log.top_level()
        assert len(top) == 2  # uc1 and uc2; the resolution and the repeat made no new message
        first = next(m for m in top if f"uc1-{run}" in str(m["blocks"]))
        second = next(m for m in top if f"uc2-{run}" in str(m["blocks"]))
        assert [u["ts"] for u in slack.log.updates] == [first["ts"]]
        assert first["text"].startswith("RESOLVED spend_rate_limit")
        assert second["text"].startswith("[HIGH] spend_rate_limit")
        assert second["channel"] == "#ai-finops"
        assert len(slack.log.replies(first["ts"])) == 1
        assert notifier.counts == {"delivered": 3, "skipped": 1, "refused": 0}
        statuses = [status for _t, _m, status in slack.log.requests]
        assert statuses[:4] == [429, 500, 503, 200] and delivery.retries == 3
        retry_after_429 = slack.log.requests[1][0] - slack.log.requests[0][0]
        assert retry_after_429 >= 1.0  # Retry-After honoured, not merely retried


def test_outage_and_recovery_deliver_every_alert_once_across_restarts(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    run = topics["run"]
    alerts = [make_alert(n, run=run) for n in range(5)]
    with FakeSlack() as slack:
        slack.down = True
        publish(kafka_bootstrap, topics["alerts"], alerts)
        with running_notifier(kafka_bootstrap, slack, topics):
            wait_for(lambda: len(slack.log.requests) >= 3, "retries during the outage")
        # Stopped mid-outage: nothing was delivered, so nothing was committed.
        with running_notifier(kafka_bootstrap, slack, topics) as (notifier, _):
            wait_for(lambda: len(slack.log.requests) >= 6, "retries after the restart")
            slack.down = False
            wait_for(lambda: notifier.counts["delivered"] == 5, "delivery after recovery")
        assert sorted(m["text"] for m in slack.log.top_level()) == sorted(
            f"[HIGH] spend_rate_limit: {a.summary}" for a in alerts
        )
        assert len(slack.log.top_level()) == 5

        # A third run delivers only what is new, and resolves in the existing thread.
        publish(kafka_bootstrap, topics["alerts"], [make_alert(3, "resolved", run=run)])
        with running_notifier(kafka_bootstrap, slack, topics) as (notifier, _):
            wait_for(lambda: notifier.counts["delivered"] == 1, "the resolution")
        assert notifier.counts == {"delivered": 1, "skipped": 0, "refused": 0}
        assert len(slack.log.top_level()) == 5 and len(slack.log.updates) == 1


def test_a_silenced_incident_posts_nothing_while_others_are_delivered(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    run = topics["run"]
    now = datetime.now(UTC)
    maintenance = new_silence(
        [f'use_case_id="uc1-{run}"'], timedelta(hours=1), "ana", "planned load test", now
    )
    with FakeSlack() as slack:
        publish(
            kafka_bootstrap,
            topics["alerts"],
            [
                make_alert(1, run=run),
                make_alert(2, run=run),
                make_alert(1, "resolved", run=run),
            ],
        )
        with running_notifier(kafka_bootstrap, slack, topics, [maintenance]) as (notifier, _):
            wait_for(
                lambda: notifier.counts["delivered"] + notifier.counts.get("silenced", 0) >= 3,
                "three alerts handled",
            )
        assert notifier.counts["silenced"] == 2  # uc1 firing and its resolution
        assert [m for m in slack.log.top_level() if f"uc1-{run}" in str(m["blocks"])] == []
        assert len(slack.log.top_level()) == 1
