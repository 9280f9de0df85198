"""The Slack message builder and the delivery plan: pure, no Slack, no broker."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.streams.notify import ThreadRecord, plan_delivery
from spendfuse.streams.slack_message import build_alert_message, load_router

FIRED = datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC)


def alert(status: str = "firing", **kw) -> Alert:
    base = dict(
        alert_id="a1", fingerprint="spend_rate_limit/acme/bot", rule="spend_rate_limit",
        status=status, severity="high", tenant_id="acme", use_case_id="bot",
        summary="Spend on bot reached $12.00 in 60s, over its $5.00 limit",
        evidence=Evidence(metric="spend_usd_per_window", value=12.0, threshold=5.0,
                          baseline=3.0, window_s=60),
        fired_at=FIRED, labels={"risk_tier": "low"}, actions_taken=["cmd-1"],
        how_to_silence="spendfuse silence --matcher 'fingerprint=\"x\"' --for 1h",
    )  # fmt: skip
    return Alert(**{**base, **kw})


def test_message_says_what_how_bad_where_since_what_was_done_and_how_to_undo() -> None:
    msg = build_alert_message(alert())
    text = orjson.dumps(msg["blocks"]).decode()
    assert msg["text"].startswith("[HIGH] spend_rate_limit: Spend on bot reached $12.00")
    for expected in ["HIGH · spend_rate_limit", "tenant `acme`", "use case `bot`",
                     "risk_tier `low`", "= 12", "threshold 5", "baseline 3 (4.0x)",
                     "since 2026-11-23T09:00:01.000Z", "issued command `cmd-1`",
                     "spendfuse silence", "spendfuse restore use_case bot"]:  # fmt: skip
        assert expected in text, expected


def test_guardrail_hold_is_shown_when_nothing_was_done() -> None:
    text = orjson.dumps(build_alert_message(
        alert(actions_taken=[], guardrail_held=["degrade held back: high-risk"])
    )["blocks"]).decode()  # fmt: skip
    assert "guardrail held back: degrade held back: high-risk" in text
    assert "spendfuse restore" not in text


def test_resolved_message_is_marked_resolved() -> None:
    msg = build_alert_message(alert("resolved", resolved_at=FIRED.replace(minute=5)))
    assert msg["text"].startswith("RESOLVED")
    assert "resolved 2026-11-23T09:05:01.000Z" in orjson.dumps(msg["blocks"]).decode()


def test_plan_posts_once_then_resolves_in_the_thread() -> None:
    fired = alert()
    assert plan_delivery(fired, None) == "post"
    record = ThreadRecord(fired.fingerprint, "a1", "#c", "1.0", ["firing"])
    assert plan_delivery(fired, record) == "skip"
    assert plan_delivery(alert("resolved"), record) == "resolve"
    record.delivered.append("resolved")
    assert plan_delivery(alert("resolved"), record) == "skip"
    assert plan_delivery(alert(alert_id="a2"), record) == "post"  # a new incident


def test_router_defaults_and_loads_a_callable() -> None:
    assert load_router(None, "#ai-finops")(alert()) == "#ai-finops"
    route = load_router("tests.slack.routes:by_severity", "#ai-finops")
    assert route(alert()) == "#ai-oncall"
    assert route(alert(severity="low")) == "#ai-finops"
