"""The notifier on the real broker, talking slack-sdk to a local fake of Slack's Web API.

Each test uses its own topics (one prefix per test) and consumer groups. Rule files give short
group timings (1s) so grouping, updates and resolutions are seen within seconds.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr

from spendfuse.rules.silences import new_silence
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import encode
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.settings import Settings
from spendfuse.silence_store import save_silences, silences_path
from spendfuse.streams.notify import NotifyOptions, NotifyTopics, RetryPolicy, build_notifier
from spendfuse.streams.notify.dispatch import SELF_ALERT_RULE, Notifier
from spendfuse.streams.notify.silence import publish_silence
from spendfuse.streams.notify.topics import ensure_topics
from tests.slack.fake_slack import FakeSlack
from tests.support.waiting import wait_for

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
ROUTING = """
version: 1
receivers:
  - {name: finops, slack: {channel: "#ai-finops"}}
  - {name: oncall, slack: {channel: "#ai-oncall"}}
route:
  receiver: finops
  group_by: [tenant_id, use_case_id]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
  routes:
    - {matchers: ['severity=~"high|critical"'], receiver: oncall}
inhibit_rules:
  - source_matchers: ['action=~"kill_switch|degrade"']
    target_matchers: ['action="none"', 'severity!="critical"']
    equal: [tenant_id, use_case_id]
"""


def make_alert(
    n: int,
    status: str = "firing",
    *,
    run: str,
    rule: str = "spend_rate_limit",
    uc: str | None = None,
    **kw,
) -> Alert:
    uc = uc or f"uc{n}-{run}"
    return Alert(
        alert_id=f"{run}-{rule}-{n}",
        fingerprint=f"{rule}/acme/{uc}",
        rule=rule,
        status=status,
        severity=kw.pop("severity", "high"),
        tenant_id="acme",
        use_case_id=uc,
        summary=f"Spend on {uc} over its limit",
        fired_at=T0 + timedelta(seconds=n),
        evidence=Evidence(metric="spend_usd_per_window", value=6.0 + n, threshold=5.0),
        resolved_at=T0 + timedelta(minutes=5) if status == "resolved" else None,
        **kw,
    )


@pytest.fixture
def env(kafka_bootstrap: str, tmp_path: Path) -> dict:
    run = uuid.uuid4().hex[:8]
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "routing.yaml").write_text(ROUTING)
    topics = NotifyTopics.prefixed(f"test.notify.{run}")
    ensure_topics(kafka_bootstrap, {topics.alerts: (2, False), topics.control: (1, True)})
    return {
        "run": run,
        "rules": rules,
        "topics": topics,
        "data": tmp_path / "data",
        "group": f"notify-{run}",
        "bootstrap": kafka_bootstrap,
    }


def publish(env: dict, alerts: list[Alert]) -> None:
    producer = Producer({"bootstrap.servers": env["bootstrap"]})
    for alert in alerts:
        producer.produce(env["topics"].alerts, key=alert.fingerprint.encode(), value=encode(alert))
    assert producer.flush(30) == 0


@contextmanager
def running(env: dict, slack: FakeSlack, token: str | None = None) -> Iterator[Notifier]:
    settings = Settings(
        bootstrap_servers=env["bootstrap"],
        rules_dir=env["rules"],
        rules_default_pack=False,
        slack_bot_token=SecretStr(token or slack.token),
        slack_base_url=slack.base_url,
        console_alerts=False,
        data_dir=env["data"],
        notify_metrics_port=0,
        rules_reload_s=0.5,
    )
    options = NotifyOptions(
        group_id=env["group"],
        retry=RetryPolicy(base_s=0.2, max_s=1.0),
        tick_s=0.05,
        file_sync_s=0.3,
        failing_after=2,
    )
    notifier = build_notifier(settings, env["topics"], options)
    stop = threading.Event()
    thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield notifier
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def in_channel(slack: FakeSlack, channel: str) -> list[dict]:
    return [m for m in slack.log.top_level() if m["channel"] == channel]


def test_one_thread_per_group_resolution_updates_it_and_repeats_are_not_news(env: dict) -> None:
    run = env["run"]
    with FakeSlack() as slack:
        slack.script.extend([(429, {"Retry-After": "1"}), (503, {})])
        shared = f"shared-{run}"
        publish(
            env,
            [
                make_alert(1, run=run, uc=shared),
                make_alert(2, run=run, uc=shared, rule="loop"),
                make_alert(3, run=run, severity="low"),
                make_alert(1, run=run, uc=shared),  # repeat
            ],
        )
        with running(env, slack) as notifier:
            wait_for(lambda: notifier.counts["delivered"] >= 2, "two groups notified")
            publish(env, [make_alert(1, "resolved", run=run, uc=shared)])
            wait_for(lambda: notifier.counts["delivered"] >= 3, "the resolution")
        oncall, finops = in_channel(slack, "#ai-oncall"), in_channel(slack, "#ai-finops")
        assert len(oncall) == 1 and len(finops) == 1  # two alerts of one use case: one message
        parent = oncall[0]
        assert "1 firing: loop" in parent["text"]  # updated in place: one left, one resolved
        assert "RESOLVED" in str(parent["blocks"]) and shared in str(parent["blocks"])
        assert [u["ts"] for u in slack.log.updates] == [parent["ts"]]
        reply = slack.log.replies(parent["ts"])
        assert len(reply) == 1 and "resolved" in reply[0]["text"]
        assert notifier.counts["error:ratelimited"] == 1 and notifier.counts["error:http_503"] == 1
        assert (
            notifier.metrics.delivery_errors.labels("oncall", "slack", "ratelimited")._value.get()
            + (
                notifier.metrics.delivery_errors.labels(
                    "finops", "slack", "ratelimited"
                )._value.get()
            )
            == 1
        )


def test_slack_refusing_holds_every_alert_counts_it_raises_its_own_alert_and_recovers(
    env: dict,
) -> None:
    run = env["run"]
    alerts = [make_alert(n, run=run) for n in range(3)]
    with FakeSlack() as slack:
        publish(env, alerts)
        with running(env, slack, token="xoxb-revoked") as notifier:
            wait_for(lambda: notifier.counts["error:invalid_auth"] >= 6, "retries with backoff")
            errors = notifier.metrics.slack_delivery_errors.labels("invalid_auth")._value.get()
            assert errors >= 6 and slack.log.top_level() == []
            assert "oncall/slack" in notifier.failing  # raised its own alert
        # The token is fixed: a restarted notifier delivers everything held, and the self-alert.
        with running(env, slack) as notifier:
            wait_for(lambda: len(in_channel(slack, "#ai-oncall")) >= 4, "held alerts + self")
        texts = str([m["blocks"] for m in in_channel(slack, "#ai-oncall")])
        for alert in alerts:
            assert alert.use_case_id in texts
        assert SELF_ALERT_RULE in texts
        assert len(in_channel(slack, "#ai-oncall")) == 4


def test_two_replicas_send_each_notification_once(env: dict) -> None:
    run = env["run"]
    alerts = [make_alert(n, run=run) for n in range(12)]
    with FakeSlack() as slack, running(env, slack) as first, running(env, slack) as second:
        wait_for(lambda: first.owned and second.owned, "both replicas own partitions", 90)
        publish(env, alerts)
        wait_for(lambda: len(slack.log.top_level()) >= 12, "every group notified")
        publish(env, [make_alert(n, "resolved", run=run) for n in range(12)])
        wait_for(lambda: len(slack.log.replies_all()) >= 12, "every resolution")
        assert first.counts["delivered"] > 0 and second.counts["delivered"] > 0
    tops = slack.log.top_level()
    assert sorted(str(m["blocks"]).count(f"-{run}") > 0 for m in tops) == [True] * 12
    assert len(tops) == 12 and len({m["text"] for m in tops}) == 12  # each group once
    assert len(slack.log.replies_all()) == 12 and len(slack.log.updates) == 12


def test_silences_from_topic_and_file_mute_and_a_bad_file_changes_nothing(env: dict) -> None:
    run = env["run"]
    now = datetime.now(UTC)
    from_topic = new_silence(
        [f'use_case_id="uc1-{run}"'], timedelta(hours=1), "ana", "load test", now
    )
    from_file = new_silence([f'use_case_id="uc2-{run}"'], timedelta(hours=1), "bo", "deploy", now)
    producer = Producer({"bootstrap.servers": env["bootstrap"]})
    ensure_topics(env["bootstrap"], {env["topics"].silences: (1, True)})
    publish_silence(producer, env["topics"].silences, from_topic)
    assert producer.flush(30) == 0
    path = silences_path(env["data"])
    save_silences(path, [from_file])
    with FakeSlack() as slack, running(env, slack) as notifier:
        wait_for(lambda: len(notifier.silences.active()) == 2, "both silences")
        path.write_text("[{not json")  # a malformed file: logged, last good silences kept
        publish(env, [make_alert(n, run=run) for n in (1, 2, 3)])
        wait_for(
            lambda: notifier.counts["delivered"] >= 1 and notifier.counts["muted"] >= 2,
            "one delivered, two muted",
        )
        assert len(notifier.silences.active()) == 2
    assert [m for m in slack.log.top_level() if f"uc3-{run}" not in str(m["blocks"])] == []
    # the file's silence reached the topic: another replica would mute the same
    consumer = Consumer({"bootstrap.servers": env["bootstrap"], "group.id": uuid.uuid4().hex})
    consumer.assign([TopicPartition(env["topics"].silences, 0, 0)])
    ids = set()
    while (msg := consumer.poll(5)) is not None:
        ids.add(orjson.loads(msg.value())["id"])
    consumer.close()
    assert ids == {from_topic.id, from_file.id}


def test_enforced_command_inhibits_owner_routes_and_lift_names_the_target(env: dict) -> None:
    run = env["run"]
    uc = f"uc-{run}"
    cmd = ControlCommand(
        command_id=f"cmd-{run}",
        kind=CommandKind.KILL_SWITCH,
        mode="enforce",
        target=Target(type=TargetType.TENANT, id="acme"),
        issued_by="rule:cap",
        reason="cap",
        tenant_id="acme",
        use_case_id=uc,
        issued_at=T0,
        expires_at=datetime.now(UTC) + timedelta(hours=1),
        how_to_lift="spendfuse restore tenant acme --reason '...'",
    )
    producer = Producer({"bootstrap.servers": env["bootstrap"]})
    producer.produce(env["topics"].control, key=cmd.key().encode(), value=encode(cmd))
    assert producer.flush(30) == 0
    lesser = make_alert(1, run=run, uc=uc, rule="lesser", severity="low", labels={"action": "none"})
    capped = make_alert(
        2,
        run=run,
        uc=f"other-{run}",
        rule="tenant_cap",
        severity="low",
        labels={"owner": "#acme-finops", "action": "none"},
        actions_taken=[cmd.command_id],
    )
    with FakeSlack() as slack, running(env, slack) as notifier:
        wait_for(lambda: notifier.lift_hints.get(cmd.command_id), "the command seen")
        publish(env, [lesser, capped])
        wait_for(lambda: len(in_channel(slack, "#acme-finops")) == 1, "the owner's copy")
        wait_for(lambda: notifier.counts["muted"] >= 1, "the lesser alert inhibited")
    finops = in_channel(slack, "#ai-finops")
    assert len(finops) == 1 and "tenant_cap" in finops[0]["text"]  # the lesser one is muted
    blocks = str(in_channel(slack, "#acme-finops")[0]["blocks"])
    assert "spendfuse restore tenant acme" in blocks and "use_case" not in blocks.split("lift")[1]


def test_an_outage_across_a_restart_loses_nothing_and_repeats_nothing(env: dict) -> None:
    run = env["run"]
    alerts = [make_alert(n, run=run) for n in range(5)]
    with FakeSlack() as slack:
        slack.down = True
        publish(env, alerts)
        with running(env, slack) as notifier:
            wait_for(lambda: notifier.counts["error:http_503"] >= 5, "retries during the outage")
        with running(env, slack) as notifier:  # restarted mid-outage: the ledger held them
            wait_for(lambda: notifier.counts["error:http_503"] >= 5, "retries after the restart")
            slack.down = False
            wait_for(
                lambda: all(
                    any(a.use_case_id in m["text"] for m in slack.log.top_level()) for a in alerts
                ),
                "delivery after recovery",
            )
        publish(env, [make_alert(3, "resolved", run=run)])
        with running(env, slack) as notifier:
            wait_for(lambda: notifier.counts["delivered"] >= 1, "the resolution")
    tops = [m for m in slack.log.top_level() if SELF_ALERT_RULE not in m["text"]]
    assert len(tops) == 5 and len(slack.log.top_level()) <= 6  # and the outage's own alert
    for alert in alerts:  # each incident posted once
        assert sum(alert.use_case_id in m["text"] for m in tops) == 1
    ours = {m["ts"] for m in tops}
    assert len([u for u in slack.log.updates if u["ts"] in ours]) == 1  # the resolution
    assert len([r for r in slack.log.replies_all() if r["thread_ts"] in ours]) == 1
