"""Print alerts to the console: beside Slack in the notifier, and in the worker without a token.

Alert text comes from events (use case ids, labels, summaries), so every dynamic part goes
through :func:`rich.markup.escape`: a ``use_case_id`` of ``bot[/x]`` prints as written instead of
raising ``MarkupError``. A record that cannot be decoded is logged and skipped, never re-raised,
so one bad alert cannot crash-loop the printer.
"""

from __future__ import annotations

import logging

import faust
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode

log = logging.getLogger(__name__)
_STYLE = {"low": "cyan", "medium": "yellow", "high": "bold red", "critical": "bold white on red"}


def format_alert(alert: Alert) -> str:
    """Rich markup for one alert; only the severity style is markup, the rest is escaped."""
    ev = alert.evidence
    head = "RESOLVED" if alert.status == "resolved" else alert.severity.value.upper()
    detail = (
        f" {alert.rule} tenant={alert.tenant_id} use_case={alert.use_case_id}: {alert.summary} "
        f"({ev.metric}={ev.value:g}"
        + (f" vs {ev.threshold:g}" if ev.threshold is not None else "")
        + ")"
    )
    line = f"[{_STYLE.get(alert.severity.value, 'default')}]{head}[/]{escape(detail)}"
    if alert.actions_taken:
        line += f"\n    commands issued: {escape(', '.join(alert.actions_taken))}"
    for held in alert.guardrail_held:
        line += f"\n    guardrail: {escape(held)}"
    if ev.top_traces:
        line += "\n    top traces: " + escape(
            ", ".join(f"{t.trace_id} ${t.cost_usd:.4g}" for t in ev.top_traces)
        )
    line += f"\n    explain: {escape('spendfuse explain ' + alert.alert_id)}"
    return line


def register_console_agent(app: faust.App, alerts_topic: faust.TopicT) -> None:
    console = Console(stderr=False, highlight=False)

    @app.agent(alerts_topic, name="print_alerts")
    async def print_alerts(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                console.print(format_alert(decode(value, Alert)))
            except (ValueError, ValidationError) as exc:  # orjson's error is a ValueError
                log.warning("alert not printable: %s", exc)
