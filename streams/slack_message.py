"""Build Slack Block Kit messages for alerts and alert groups. Pure: no Slack client, no clock.

A message answers what on-call asks first: what is wrong, how bad, where (tenant, use case,
labels), the value against its threshold and baseline, since when, what spendfuse did about it
(or what the risk-tier guardrail held back), the evidence (top traces, sample events and the
``spendfuse explain`` command that prints them), and how to silence or lift it.

Every string that can come from an event (tenant and use case ids, labels, trace ids, summaries)
is escaped the way Slack documents (``&``, ``<``, ``>`` as entities), so ``<!channel>``,
``<@U123>`` or ``<https://evil|click>`` arrive as text; values sit in code spans (backticks
removed) so mrkdwn cannot format them, free text goes in ``plain_text`` objects, and mrkdwn
objects are ``verbatim`` so Slack does not turn bare URLs, ``@here`` or ``#channel`` into links
or mentions. Suggested commands are shell-quoted with :func:`shlex.quote`.
"""

from __future__ import annotations

import importlib
import shlex
from collections.abc import Callable, Mapping
from typing import Any

from spendfuse.rules.grouping import Notification
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.common import format_rfc3339

Router = Callable[[Alert], str]
_ICON = {
    "low": ":large_blue_circle:",
    "medium": ":large_yellow_circle:",
    "high": ":red_circle:",
    "critical": ":rotating_light:",
}
_SEVERITY_ORDER = ["low", "medium", "high", "critical"]
MAX_ALERTS_SHOWN = 8  # Slack allows 50 blocks; a group past this size links to the rest
POST_OPTIONS = {"parse": "none", "link_names": False, "unfurl_links": False, "unfurl_media": False}


def slack_escape(text: str) -> str:
    """Slack's escaping for message text: the three control characters as HTML entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code(value: object, limit: int = 200) -> str:
    """An event-derived value as an inline code span: escaped, no backticks, bounded."""
    text = str(value).replace("`", "'").replace("\n", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return f"`{slack_escape(text)}`"


def plain(text: str, limit: int = 3000) -> dict[str, Any]:
    return {"type": "plain_text", "text": slack_escape(text)[:limit] or " ", "emoji": False}


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn object whose dynamic parts were escaped by the caller; verbatim (no auto-links)."""
    return {"type": "mrkdwn", "text": text[:3000], "verbatim": True}


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g}"


def _value_line(alert: Alert) -> str:
    ev = alert.evidence
    parts = [f"{code(ev.metric)} = {_num(ev.value)}"]
    if ev.threshold is not None:
        parts.append(f"threshold {_num(ev.threshold)}")
    if ev.baseline is not None:
        ratio = f" ({ev.value / ev.baseline:.1f}x)" if ev.baseline else ""
        parts.append(f"baseline {_num(ev.baseline)}{ratio}")
    if ev.window_s:
        parts.append(f"over {ev.window_s}s")
    return " · ".join(parts)


def _did_line(alert: Alert) -> str:
    lines = [f"issued command {code(cid)}" for cid in alert.actions_taken]
    lines += [f"guardrail held back: {slack_escape(held)}" for held in alert.guardrail_held]
    return "\n".join(lines) or "alert only (no command issued)"


def lift_command(alert: Alert, lift_hints: Mapping[str, str] | None = None) -> str | None:
    """How to lift what spendfuse did: the issued command's own hint (it names the command's
    target), else a restore of the scope the alert is about (the tenant for a tenant-wide
    alert, whose ``use_case_id`` is ``*``)."""
    if not alert.actions_taken:
        return None
    hints = lift_hints or {}
    for cid in alert.actions_taken:
        if hints.get(cid):
            return hints[cid]
    if alert.annotations.get("how_to_lift"):
        return str(alert.annotations["how_to_lift"])
    if alert.use_case_id == "*" or alert.labels.get("per") == "tenant":
        target = f"tenant {shlex.quote(alert.tenant_id)}"
    else:
        target = f"use_case {shlex.quote(alert.use_case_id)}"
    return f"spendfuse restore {target} --reason '...'"


def explain_command(alert: Alert) -> str:
    return f"spendfuse explain {shlex.quote(alert.alert_id)}"


def _undo_line(alert: Alert, lift_hints: Mapping[str, str] | None) -> str:
    lines = []
    if alert.how_to_silence:
        lines.append(f"silence: {code(alert.how_to_silence, 500)}")
    lift = lift_command(alert, lift_hints)
    if lift:
        lines.append(f"lift: {code(lift, 500)}")
    return "\n".join(lines) or "nothing to undo"


def _evidence_line(alert: Alert) -> str:
    ev = alert.evidence
    lines = [f"explain: {code(explain_command(alert), 300)}"]
    if ev.top_traces:
        lines.append(
            "top traces: "
            + ", ".join(f"{code(t.trace_id, 80)} ${t.cost_usd:,.4g}" for t in ev.top_traces)
        )
    if ev.sample_event_ids:
        lines.append("sample events: " + ", ".join(code(e, 80) for e in ev.sample_event_ids))
    return "\n".join(lines)


def _scope(alert: Alert) -> str:
    return f"tenant {code(alert.tenant_id)} · use case {code(alert.use_case_id)}" + "".join(
        f" · {slack_escape(k)} {code(v)}" for k, v in sorted(alert.labels.items())
    )


def headline(alert: Alert) -> str:
    """The notification text (what phones and screen readers show), escaped."""
    if alert.status == "resolved":
        return slack_escape(f"RESOLVED {alert.rule}: {alert.summary}")[:3000]
    return slack_escape(f"[{alert.severity.value.upper()}] {alert.rule}: {alert.summary}")[:3000]


def _alert_blocks(alert: Alert, lift_hints: Mapping[str, str] | None) -> list[dict[str, Any]]:
    resolved = alert.status == "resolved"
    since = f"since {format_rfc3339(alert.fired_at)}"
    if resolved and alert.resolved_at is not None:
        since += f", resolved {format_rfc3339(alert.resolved_at)}"
    fields = [
        mrkdwn(f"*Severity*\n{alert.severity.value}"),
        mrkdwn(f"*Scope*\n{_scope(alert)}"),
        mrkdwn(f"*Value vs baseline*\n{_value_line(alert)}"),
        mrkdwn(f"*When*\n{since}"),
    ]
    return [
        {"type": "section", "text": plain(alert.summary)},
        {"type": "section", "fields": fields},
        {"type": "section", "text": mrkdwn(f"*What spendfuse did*\n{_did_line(alert)}")},
        {"type": "section", "text": mrkdwn(f"*Evidence*\n{_evidence_line(alert)}")},
        {"type": "section", "text": mrkdwn(f"*Silence or lift*\n{_undo_line(alert, lift_hints)}")},
        {
            "type": "context",
            "elements": [
                mrkdwn(f"fingerprint {code(alert.fingerprint)} · alert {code(alert.alert_id)}")
            ],
        },
    ]


def build_alert_message(
    alert: Alert, lift_hints: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``text`` and ``blocks`` for one alert (``chat.postMessage`` / ``chat.update``)."""
    resolved = alert.status == "resolved"
    icon = ":white_check_mark:" if resolved else _ICON.get(alert.severity.value, ":warning:")
    title = f"{icon} {'RESOLVED' if resolved else alert.severity.value.upper()} · {alert.rule}"
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}}
    ]
    return {"text": headline(alert), "blocks": blocks + _alert_blocks(alert, lift_hints)}


def _worst(alerts: list[Alert]) -> str:
    return max((a.severity.value for a in alerts), key=_SEVERITY_ORDER.index, default="low")


def group_title(note: Notification) -> str:
    where = " · ".join(f"{k} {v}" for k, v in sorted(note.group_labels.items()) if v)
    if note.firing:
        rules = sorted({a.rule for a in note.firing})
        head = f"{_worst(note.firing).upper()} · {len(note.firing)} firing: {', '.join(rules)}"
    else:
        head = f"RESOLVED · {', '.join(sorted({a.rule for a in note.resolved}))}"
    return f"{head} ({where})" if where else head


def build_group_message(
    note: Notification, lift_hints: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One message for a group: its firing alerts, then what resolved. Posted once, then
    updated in place as the group changes (the thread keeps the history)."""
    icon = _ICON.get(_worst(note.firing), ":warning:") if note.firing else ":white_check_mark:"
    title = f"{icon} {group_title(note)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": slack_escape(title)[:150], "emoji": True},
        },
    ]
    shown = [*note.firing, *note.resolved][:MAX_ALERTS_SHOWN]
    for i, alert in enumerate(shown):
        if i:
            blocks.append({"type": "divider"})
        if alert.status == "resolved":
            blocks.append(
                {
                    "type": "section",
                    "text": mrkdwn(
                        f":white_check_mark: *RESOLVED* {code(alert.rule)} "
                        f"{code(alert.use_case_id)}"
                    ),
                }
            )
        blocks.extend(_alert_blocks(alert, lift_hints))
    hidden = len(note.firing) + len(note.resolved) - len(shown)
    if hidden > 0:
        blocks.append(
            {"type": "context", "elements": [mrkdwn(f"and {hidden} more alerts in this group")]}
        )
    first = (note.firing or note.resolved)[0]
    text = slack_escape(group_title(note))
    text += f": {headline(first)}" if len(note.firing) + len(note.resolved) == 1 else ""
    return {"text": text[:3000], "blocks": blocks[:50]}


def build_thread_reply(note: Notification) -> str:
    """What changed, as a reply in the group's thread (escaped)."""
    parts = []
    if note.kind == "repeat":
        parts.append(f":repeat: still firing: {len(note.firing)} alerts")
    for alert in note.firing:
        if note.kind != "repeat":
            parts.append(f":rotating_light: firing: {headline(alert)}")
    for alert in note.resolved:
        when = format_rfc3339(alert.resolved_at) if alert.resolved_at else "now"
        parts.append(f":white_check_mark: resolved at {when}: {headline(alert)}")
    return "\n".join(parts)[:3000] or "updated"


def build_resolution_reply(alert: Alert) -> str:
    when = format_rfc3339(alert.resolved_at) if alert.resolved_at else "now"
    return f":white_check_mark: Resolved at {when}: {slack_escape(alert.summary)}"


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
