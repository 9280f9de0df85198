"""Build Slack Block Kit messages for alerts. Pure: no Slack client, no clock.

A message answers what on-call asks first: what is wrong, how bad, where (tenant, use case,
labels), the value against its threshold and baseline, since when, what spendfuse did about it
(or what the risk-tier guardrail held back), and how to silence or lift it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from spendfuse.schemas.alert import Alert
from spendfuse.schemas.common import format_rfc3339

Router = Callable[[Alert], str]
_ICON = {"low": ":large_blue_circle:", "medium": ":large_yellow_circle:", "high": ":red_circle:",
         "critical": ":rotating_light:"}  # fmt: skip


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g}"


def _value_line(alert: Alert) -> str:
    ev = alert.evidence
    parts = [f"*{ev.metric}* = {_num(ev.value)}"]
    if ev.threshold is not None:
        parts.append(f"threshold {_num(ev.threshold)}")
    if ev.baseline is not None:
        ratio = f" ({ev.value / ev.baseline:.1f}x)" if ev.baseline else ""
        parts.append(f"baseline {_num(ev.baseline)}{ratio}")
    if ev.window_s:
        parts.append(f"over {ev.window_s}s")
    return " · ".join(parts)


def _did_line(alert: Alert) -> str:
    lines = [f"issued command `{cid}`" for cid in alert.actions_taken]
    lines += [f"guardrail held back: {held}" for held in alert.guardrail_held]
    return "\n".join(lines) or "alert only (no command issued)"


def _undo_line(alert: Alert) -> str:
    lines = []
    if alert.how_to_silence:
        lines.append(f"silence: `{alert.how_to_silence}`")
    if alert.actions_taken:
        lift = alert.annotations.get("how_to_lift") or (
            f"spendfuse restore use_case {alert.use_case_id} --reason '...'"
        )
        lines.append(f"lift: `{lift}`")
    return "\n".join(lines) or "nothing to undo"


def headline(alert: Alert) -> str:
    """The notification text (what phones and screen readers show)."""
    if alert.status == "resolved":
        return f"RESOLVED {alert.rule}: {alert.summary}"
    return f"[{alert.severity.value.upper()}] {alert.rule}: {alert.summary}"


def build_alert_message(alert: Alert) -> dict[str, Any]:
    """``text`` and ``blocks`` for ``chat.postMessage`` / ``chat.update``."""
    resolved = alert.status == "resolved"
    icon = ":white_check_mark:" if resolved else _ICON.get(alert.severity.value, ":warning:")
    title = f"{icon} {'RESOLVED' if resolved else alert.severity.value.upper()} · {alert.rule}"
    scope = f"tenant `{alert.tenant_id}` · use case `{alert.use_case_id}`" + "".join(
        f" · {k} `{v}`" for k, v in sorted(alert.labels.items())
    )
    since = f"since {format_rfc3339(alert.fired_at)}"
    if resolved and alert.resolved_at is not None:
        since += f", resolved {format_rfc3339(alert.resolved_at)}"
    fields = [
        {"type": "mrkdwn", "text": f"*Severity*\n{alert.severity.value}"},
        {"type": "mrkdwn", "text": f"*Scope*\n{scope}"},
        {"type": "mrkdwn", "text": f"*Value vs baseline*\n{_value_line(alert)}"},
        {"type": "mrkdwn", "text": f"*When*\n{since}"},
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": alert.summary[:3000]}},
        {"type": "section", "fields": fields},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*What spendfuse did*\n{_did_line(alert)}"}},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": f"*Silence or lift*\n{_undo_line(alert)}"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text":
            f"fingerprint `{alert.fingerprint}` · alert `{alert.alert_id}`"}]},
    ]  # fmt: skip
    return {"text": headline(alert), "blocks": blocks}


def build_resolution_reply(alert: Alert) -> str:
    when = format_rfc3339(alert.resolved_at) if alert.resolved_at else "now"
    return f":white_check_mark: Resolved at {when}: {alert.summary}"


def default_router(channel: str) -> Router:
    """Every alert to one channel: the default until rule files supply routing."""
    return lambda _alert: channel


def load_router(spec: str | None, default_channel: str) -> Router:
    """``"package.module:callable"`` (a ``route(alert) -> channel``), or the default channel."""
    if not spec:
        return default_router(default_channel)
    module_name, _, attr = spec.partition(":")
    target = importlib.import_module(module_name)
    route = getattr(target, attr or "route")
    return lambda alert: route(alert) or default_channel
