"""Print alerts to the console: the notifier when no Slack token is configured."""

from __future__ import annotations

import faust
from rich.console import Console

from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode

_STYLE = {"low": "cyan", "medium": "yellow", "high": "bold red", "critical": "bold white on red"}


def format_alert(alert: Alert) -> str:
    ev = alert.evidence
    head = "RESOLVED" if alert.status == "resolved" else alert.severity.value.upper()
    line = (
        f"[{_STYLE.get(alert.severity.value, '')}]{head}[/] {alert.rule} "
        f"tenant={alert.tenant_id} use_case={alert.use_case_id}: {alert.summary} "
        f"({ev.metric}={ev.value:g}"
        + (f" vs {ev.threshold:g}" if ev.threshold is not None else "")
        + ")"
    )
    if alert.actions_taken:
        line += f"\n    commands issued: {', '.join(alert.actions_taken)}"
    for held in alert.guardrail_held:
        line += f"\n    guardrail: {held}"
    return line


def register_console_agent(app: faust.App, alerts_topic: faust.TopicT) -> None:
    console = Console(stderr=False, highlight=False)

    @app.agent(alerts_topic, name="print_alerts")
    async def print_alerts(stream: faust.StreamT) -> None:
        async for value in stream:
            console.print(format_alert(decode(value, Alert)))
