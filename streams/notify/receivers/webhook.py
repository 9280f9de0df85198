"""A generic webhook that posts Alertmanager's webhook JSON (version 4).

Tools that already take Alertmanager's webhook (incident bots, ticketing bridges, Grafana OnCall,
custom handlers) take spendfuse's alerts unchanged. One POST per group notification; the
``groupKey`` is stable for the group, and each alert's ``fingerprint`` for the incident.
"""

from __future__ import annotations

from typing import Any

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import ReceiverSpec
from spendfuse.rules.routing import alert_labels
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.common import format_rfc3339
from spendfuse.streams.notify.receivers import ReceiverContext
from spendfuse.streams.notify.receivers._http import post_json
from spendfuse.streams.slack_message import explain_command, lift_command

KIND = "webhook"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt for a firing alert


def _annotations(alert: Alert, ctx: ReceiverContext) -> dict[str, str]:
    ev = alert.evidence
    out = {k: str(v) for k, v in alert.annotations.items()}
    out.update(
        summary=alert.summary,
        metric=ev.metric,
        value=f"{ev.value:g}",
        explain=explain_command(alert),
    )
    if ev.threshold is not None:
        out["threshold"] = f"{ev.threshold:g}"
    if ev.baseline is not None:
        out["baseline"] = f"{ev.baseline:g}"
    if alert.how_to_silence:
        out["how_to_silence"] = alert.how_to_silence
    lift = lift_command(alert, ctx.lift_hints)
    if lift:
        out["how_to_lift"] = lift
    if ev.top_traces:
        out["top_traces"] = ",".join(t.trace_id for t in ev.top_traces)
    if ev.sample_event_ids:
        out["sample_event_ids"] = ",".join(ev.sample_event_ids)
    return out


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def webhook_payload(note: Notification, ctx: ReceiverContext) -> dict[str, Any]:
    """Alertmanager's webhook body for one group notification."""
    alerts = []
    for alert in [*note.firing, *note.resolved]:
        ends = format_rfc3339(alert.resolved_at) if alert.resolved_at else ZERO_TIME
        alerts.append(
            {
                "status": alert.status,
                "labels": alert_labels(alert),
                "annotations": _annotations(alert, ctx),
                "startsAt": format_rfc3339(alert.fired_at),
                "endsAt": ends,
                "generatorURL": "",
                "fingerprint": alert.fingerprint,
            }
        )
    return {
        "version": "4",
        "groupKey": note.group_key,
        "truncatedAlerts": 0,
        "status": "firing" if note.firing else "resolved",
        "receiver": note.receiver,
        "groupLabels": dict(note.group_labels),
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": _common([a["annotations"] for a in alerts]),
        "externalURL": "",
        "alerts": alerts,
    }


class WebhookReceiver:
    kind = KIND

    def __init__(self, url: str, ctx: ReceiverContext, token: str | None = None) -> None:
        self.url = url
        self.ctx = ctx
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def send(self, note: Notification) -> dict[str, Any]:
        post_json(self.url, webhook_payload(note, self.ctx), self.headers)
        return {}


def build(name: str, spec: ReceiverSpec | None, ctx: ReceiverContext) -> WebhookReceiver | None:
    if spec is None or spec.webhook is None:
        return None
    env = spec.webhook.bearer_token_env
    return WebhookReceiver(spec.webhook.url, ctx, ctx.environ.get(env) if env else None)
