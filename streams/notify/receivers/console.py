"""The console: every group's notification printed, beside Slack unless turned off
(``SPENDFUSE_CONSOLE_ALERTS=false``), or for a receiver with ``console: true``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import ReceiverSpec
from spendfuse.rules.routing import OWNER_PREFIX
from spendfuse.streams.console import format_alert
from spendfuse.streams.notify.receivers import DeliveryError, ReceiverContext

KIND = "console"


class ConsoleReceiver:
    kind = KIND

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False, soft_wrap=True)

    def send(self, note: Notification) -> dict[str, Any]:
        where = " ".join(f"{k}={v}" for k, v in sorted(note.group_labels.items()))
        try:
            self.console.print(f"[dim]{note.kind} · {escape(note.receiver)} · {escape(where)}[/]")
            for alert in [*note.firing, *note.resolved]:
                self.console.print(format_alert(alert))
        except OSError as exc:  # a closed stdout: retried like any receiver
            raise DeliveryError("console", str(exc)) from None
        return {}


def build(name: str, spec: ReceiverSpec | None, ctx: ReceiverContext) -> ConsoleReceiver | None:
    if spec is not None and spec.console:
        return ConsoleReceiver()
    if ctx.settings.console_alerts and not name.startswith(OWNER_PREFIX):
        return ConsoleReceiver()  # an owner's copy of an alert is not printed a second time
    return None
