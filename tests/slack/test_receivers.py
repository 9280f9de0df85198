"""Each receiver against a local server speaking its API: Slack's Web API, a webhook consumer,
PagerDuty's Events API v2. No broker: a receiver only turns a notification into requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import SecretStr

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import PagerDutyReceiver, ReceiverSpec, SlackReceiver, WebhookReceiver
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.settings import Settings
from spendfuse.streams.notify.receivers import (
    DeliveryError,
    ReceiverContext,
    Registry,
    pagerduty,
    slack,
    webhook,
)
from tests.slack.fake_http import FakePagerDuty, FakeWebhook
from tests.slack.fake_slack import FakeSlack

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def make_alert(n: int, status: str = "firing") -> Alert:
    return Alert(
        alert_id=f"a{n}",
        fingerprint=f"loop/acme/uc{n}",
        rule="loop",
        status=status,
        severity="critical",
        tenant_id="acme",
        use_case_id=f"uc{n}",
        summary=f"loop on uc{n}",
        evidence=Evidence(metric="calls", value=90.0, threshold=50.0),
        fired_at=T0,
        resolved_at=T0 if status == "resolved" else None,
        actions_taken=["cmd-9"],
    )


def note(kind: str, firing=(), resolved=(), thread=None) -> Notification:
    return Notification(
        "oncall",
        "#ai-oncall",
        'oncall/x:{"tenant_id": "acme"}',
        {"tenant_id": "acme"},
        kind,
        firing=list(firing),
        resolved=list(resolved),
        thread=dict(thread or {}),
    )


def ctx(**settings) -> ReceiverContext:
    return ReceiverContext(
        Settings(console_alerts=False, **settings),
        {"cmd-9": "spendfuse restore tenant acme --reason '...'"},
        {"PD_KEY": "R0UTINGKEY0123456789012345678901", "HOOK_TOKEN": "s3cret"},
    )


def test_slack_posts_once_per_group_then_updates_and_replies_in_the_thread() -> None:
    with FakeSlack() as fake:
        c = ctx(slack_bot_token=SecretStr(fake.token), slack_base_url=fake.base_url)
        spec = ReceiverSpec(name="oncall", slack=SlackReceiver(channel="#ai-oncall"))
        receiver = slack.build("oncall", spec, c)
        assert receiver is not None
        thread = receiver.send(note("new", [make_alert(1)]))
        thread = receiver.send(note("update", [make_alert(1), make_alert(2)], thread=thread))
        receiver.send(note("update", [make_alert(2)], [make_alert(1, "resolved")], thread))
        top = fake.log.top_level()
        assert len(top) == 1 and top[0]["channel"] == "#ai-oncall"
        assert len(fake.log.updates) == 2 and len(fake.log.replies(top[0]["ts"])) == 2
        assert "resolved" in fake.log.replies(top[0]["ts"])[-1]["text"]
        assert "spendfuse restore tenant acme" in str(top[0]["blocks"])
        assert "spendfuse explain a1" in str(top[0]["blocks"])


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("bad_token", "invalid_auth"),
        ("bad_channel", "channel_not_found"),
        ("429", "ratelimited"),
        ("500", "http_500"),
    ],
)
def test_slack_errors_are_delivery_errors_with_their_reason(setup: str, reason: str) -> None:
    with FakeSlack() as fake:
        token = "xoxb-wrong" if setup == "bad_token" else fake.token
        channel = "nochannel" if setup == "bad_channel" else "#ai-oncall"
        if setup in ("429", "500"):
            fake.script.append((int(setup), {"Retry-After": "7"}))
        c = ctx(slack_bot_token=SecretStr(token), slack_base_url=fake.base_url)
        receiver = slack.build("oncall", ReceiverSpec(name="oncall", slack={"channel": channel}), c)
        unrouted = note("new", [make_alert(1)])
        unrouted.channel = None  # the receiver's own channel applies
        with pytest.raises(DeliveryError) as caught:
            receiver.send(unrouted)
        assert caught.value.reason == reason
        assert caught.value.retry_after_s == (7.0 if setup == "429" else None)
        assert fake.log.top_level() == []


def test_webhook_posts_alertmanager_webhook_json() -> None:
    with FakeWebhook(token="s3cret") as hook:
        spec = ReceiverSpec(
            name="oncall",
            webhook=WebhookReceiver(url=hook.url + "/hook", bearer_token_env="HOOK_TOKEN"),
        )
        receiver = webhook.build("oncall", spec, ctx())
        receiver.send(note("new", [make_alert(1), make_alert(2)]))
        receiver.send(note("update", [make_alert(2)], [make_alert(1, "resolved")]))
        first, second = hook.bodies
        assert first["version"] == "4" and first["status"] == "firing"
        assert first["groupLabels"] == {"tenant_id": "acme"} and first["receiver"] == "oncall"
        assert first["commonLabels"]["alertname"] == "loop"
        assert [a["labels"]["use_case_id"] for a in first["alerts"]] == ["uc1", "uc2"]
        assert first["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert first["alerts"][0]["annotations"]["explain"] == "spendfuse explain a1"
        assert first["alerts"][0]["annotations"]["how_to_lift"].startswith(
            "spendfuse restore tenant"
        )
        assert [a["status"] for a in second["alerts"]] == ["firing", "resolved"]
        assert second["alerts"][1]["endsAt"] == "2026-11-23T09:00:00.000Z"
    with FakeWebhook(token="other") as hook:
        receiver = webhook.build(
            "oncall", ReceiverSpec(name="oncall", webhook={"url": hook.url}), ctx()
        )
        with pytest.raises(DeliveryError, match="http_401"):
            receiver.send(note("new", [make_alert(1)]))


def test_pagerduty_triggers_and_resolves_one_incident_per_group() -> None:
    with FakePagerDuty() as pd:
        spec = ReceiverSpec(
            name="oncall",
            pagerduty=PagerDutyReceiver(routing_key_env="PD_KEY", url=pd.url + "/v2/enqueue"),
        )
        receiver = pagerduty.build("oncall", spec, ctx())
        thread = receiver.send(note("new", [make_alert(1)]))
        receiver.send(note("update", [make_alert(1), make_alert(2)], thread=thread))
        assert list(pd.incidents.values()) == ["triggered"]  # one dedup_key: one incident
        receiver.send(note("update", [], [make_alert(1, "resolved"), make_alert(2, "resolved")]))
        assert list(pd.incidents.values()) == ["resolved"]
        assert thread["dedup_key"] in pd.incidents
        assert pd.bodies[0]["payload"]["severity"] == "critical"
        pd.script.append((429, {"Retry-After": "3"}))
        with pytest.raises(DeliveryError) as caught:
            receiver.send(note("repeat", [make_alert(1)]))
        assert (caught.value.reason, caught.value.retry_after_s) == ("ratelimited", 3.0)
        unkeyed = pagerduty.build(
            "x", ReceiverSpec(name="x", pagerduty={"routing_key_env": "NOPE", "url": pd.url}), ctx()
        )
        with pytest.raises(DeliveryError, match="no_routing_key"):
            unkeyed.send(note("new", [make_alert(1)]))


def test_registry_finds_every_receiver_file_and_keeps_console_beside_slack() -> None:
    specs = {
        "oncall": ReceiverSpec(
            name="oncall", slack={"channel": "#ai-oncall"}, pagerduty={"routing_key_env": "PD_KEY"}
        )
    }
    with_token = ReceiverContext(Settings(slack_bot_token=SecretStr("xoxb-1")))
    assert Registry(specs, with_token).integrations("oncall") == ["console", "pagerduty", "slack"]
    assert Registry(specs, with_token).integrations("owner:#team") == ["slack"]
    quiet = ReceiverContext(Settings(console_alerts=False))
    assert Registry(specs, quiet).integrations("oncall") == ["pagerduty"]
    assert Registry(specs, quiet).integrations("finops") == ["unconfigured"]  # held, not dropped
