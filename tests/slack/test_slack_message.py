"""Slack and console messages: pure, no Slack, no broker. Escaping, lift hints, evidence."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import orjson
from rich.console import Console

from spendfuse.rules.grouping import Notification
from spendfuse.schemas.alert import Alert, Evidence, TraceContribution
from spendfuse.streams.console import format_alert
from spendfuse.streams.slack_message import (
    build_alert_message,
    build_group_message,
    lift_command,
    load_router,
)

FIRED = datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC)


def alert(status: str = "firing", **kw) -> Alert:
    base = dict(
        alert_id="a1",
        fingerprint="spend_rate_limit/acme/bot",
        rule="spend_rate_limit",
        status=status,
        severity="high",
        tenant_id="acme",
        use_case_id="bot",
        summary="Spend on bot reached $12.00 in 60s, over its $5.00 limit",
        evidence=Evidence(
            metric="spend_usd_per_window", value=12.0, threshold=5.0, baseline=3.0, window_s=60
        ),
        fired_at=FIRED,
        labels={"risk_tier": "low"},
        actions_taken=["cmd-1"],
        how_to_silence="spendfuse silence --matcher 'fingerprint=\"x\"' --for 1h",
    )
    return Alert(**{**base, **kw})


def blocks_text(msg: dict) -> str:
    return orjson.dumps(msg["blocks"]).decode()


def test_message_says_what_how_bad_where_since_what_was_done_and_how_to_undo() -> None:
    msg = build_alert_message(alert())
    text = blocks_text(msg)
    assert msg["text"].startswith("[HIGH] spend_rate_limit: Spend on bot reached $12.00")
    for expected in [
        "HIGH · spend_rate_limit",
        "tenant `acme`",
        "use case `bot`",
        "risk_tier `low`",
        "= 12",
        "threshold 5",
        "baseline 3 (4.0x)",
        "since 2026-11-23T09:00:01.000Z",
        "issued command `cmd-1`",
        "spendfuse silence",
        "spendfuse restore use_case bot",
        "spendfuse explain a1",
    ]:
        assert expected in text, expected


def test_evidence_shows_top_traces_and_sample_events() -> None:
    ev = Evidence(
        metric="m",
        value=1.0,
        top_traces=[TraceContribution(trace_id="tr-9", cost_usd=4.5)],
        sample_event_ids=["ev-1", "ev-2"],
    )
    text = blocks_text(build_alert_message(alert(evidence=ev)))
    assert "`tr-9` $4.5" in text and "`ev-1`, `ev-2`" in text


def test_event_derived_text_cannot_mention_link_or_format() -> None:
    hostile = alert(
        use_case_id="<!channel> *bold* `x`",
        tenant_id="<@U024BE7LH>",
        summary="click <https://evil.example|here> & <!here>",
        labels={"team": "<!subteam^S1>"},
        actions_taken=[],
    )
    msg = build_alert_message(hostile)
    raw = orjson.dumps(msg).decode()
    for bad in ["<!channel>", "<@U024BE7LH>", "<https://evil", "<!here>", "<!subteam"]:
        assert bad not in raw, bad
    assert "&lt;!channel&gt;" in raw and "&amp;" in raw
    assert "`&lt;!channel&gt; *bold* 'x'`" in raw  # a code span: no formatting, no backticks
    for block in msg["blocks"]:
        texts = [block.get("text"), *block.get("fields", []), *block.get("elements", [])]
        for obj in filter(None, texts):
            assert obj["type"] == "plain_text" or obj.get("verbatim") is True


def test_lift_hint_names_the_command_target_and_tenant_wide_caps() -> None:
    assert lift_command(alert(), {"cmd-1": "spendfuse restore tool search --reason '...'"}) == (
        "spendfuse restore tool search --reason '...'"
    )
    tenant_wide = alert(use_case_id="*", labels={"per": "tenant"})
    assert lift_command(tenant_wide) == "spendfuse restore tenant acme --reason '...'"
    assert "use_case" not in blocks_text(build_alert_message(tenant_wide))
    odd = alert(use_case_id="bot; curl x|sh")
    assert lift_command(odd) == "spendfuse restore use_case 'bot; curl x|sh' --reason '...'"
    assert lift_command(alert(actions_taken=[])) is None


def test_guardrail_hold_is_shown_when_nothing_was_done() -> None:
    text = blocks_text(
        build_alert_message(alert(actions_taken=[], guardrail_held=["degrade held: high-risk"]))
    )
    assert "guardrail held back: degrade held: high-risk" in text
    assert "spendfuse restore" not in text


def test_resolved_message_is_marked_resolved() -> None:
    msg = build_alert_message(alert("resolved", resolved_at=FIRED.replace(minute=5)))
    assert msg["text"].startswith("RESOLVED")
    assert "resolved 2026-11-23T09:05:01.000Z" in blocks_text(msg)


def test_group_message_lists_every_alert_once() -> None:
    note = Notification(
        "finops",
        "#c",
        "k",
        {"tenant_id": "acme", "use_case_id": "bot"},
        "new",
        firing=[alert(), alert(alert_id="a2", fingerprint="f2", rule="loop", severity="critical")],
    )
    msg = build_group_message(note)
    assert msg["blocks"][0]["text"]["text"].startswith(":rotating_light: CRITICAL · 2 firing")
    text = blocks_text(msg)
    assert text.count("spendfuse explain a1") == 1 and text.count("spendfuse explain a2") == 1


def test_console_prints_markup_like_ids_as_written() -> None:
    out = io.StringIO()
    console = Console(file=out, highlight=False, width=400)
    console.print(format_alert(alert(use_case_id="bot[/x]", summary="[bold red]x[/]")))
    printed = out.getvalue()
    assert "use_case=bot[/x]" in printed and "[bold red]x[/]" in printed


def test_router_defaults_and_loads_a_callable() -> None:
    assert load_router(None, "#ai-finops")(alert()) == "#ai-finops"
    route = load_router("tests.slack.routes:by_severity", "#ai-finops")
    assert route(alert()) == "#ai-oncall"
    assert route(alert(severity="low")) == "#ai-finops"
