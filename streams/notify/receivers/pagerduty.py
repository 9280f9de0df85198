"""PagerDuty Events API v2: a group pages once (``trigger``) and closes (``resolve``) by one
``dedup_key``, so one incident group is one PagerDuty incident.

Repeats re-send ``trigger`` with the same key, which PagerDuty folds into the open incident.
A 400 (invalid event) or a missing routing key is an error like any other: retried, counted and
alerted on, so a misconfigured key is seen instead of silently paging no one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import ReceiverSpec
from spendfuse.schemas.common import format_rfc3339
from spendfuse.streams.notify.receivers import DeliveryError, ReceiverContext
from spendfuse.streams.notify.receivers._http import post_json
from spendfuse.streams.slack_message import explain_command, lift_command

KIND = "pagerduty"
_SEVERITY = {"low": "info", "medium": "warning", "high": "error", "critical": "critical"}
_ORDER = ["low", "medium", "high", "critical"]


def dedup_key(group_key: str) -> str:
    return "spendfuse-" + hashlib.blake2b(group_key.encode(), digest_size=16).hexdigest()


def pagerduty_event(note: Notification, routing_key: str, ctx: ReceiverContext) -> dict[str, Any]:
    key = dedup_key(note.group_key)
    if not note.firing:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": key}
    worst = max(note.firing, key=lambda a: _ORDER.index(a.severity.value))
    where = ", ".join(f"{k}={v}" for k, v in sorted(note.group_labels.items()) if v)
    summary = f"[{worst.severity.value.upper()}] {len(note.firing)} firing: {worst.summary}"
    details = {
        a.fingerprint: {
            "rule": a.rule,
            "summary": a.summary,
            "value": a.evidence.value,
            "threshold": a.evidence.threshold,
            "baseline": a.evidence.baseline,
            "explain": explain_command(a),
            "how_to_lift": lift_command(a, ctx.lift_hints),
            "top_traces": [t.model_dump() for t in a.evidence.top_traces],
        }
        for a in note.firing
    }
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": key,
        "payload": {
            "summary": f"{summary} ({where})"[:1024],
            "source": "spendfuse",
            "severity": _SEVERITY.get(worst.severity.value, "error"),
            "timestamp": format_rfc3339(worst.fired_at),
            "component": worst.tenant_id,
            "group": worst.use_case_id,
            "class": worst.rule,
            "custom_details": details,
        },
    }


class PagerDutyReceiver:
    kind = KIND

    def __init__(self, url: str, routing_key: str | None, ctx: ReceiverContext) -> None:
        self.url = url
        self.routing_key = routing_key
        self.ctx = ctx

    def send(self, note: Notification) -> dict[str, Any]:
        if not self.routing_key:
            raise DeliveryError("no_routing_key", "set the routing key's environment variable")
        _status, answer = post_json(self.url, pagerduty_event(note, self.routing_key, self.ctx))
        if isinstance(answer, dict) and answer.get("status") not in (None, "success"):
            raise DeliveryError("refused", str(answer.get("message")))
        return {"dedup_key": dedup_key(note.group_key)}


def build(name: str, spec: ReceiverSpec | None, ctx: ReceiverContext) -> PagerDutyReceiver | None:
    if spec is None or spec.pagerduty is None:
        return None
    return PagerDutyReceiver(
        spec.pagerduty.url, ctx.environ.get(spec.pagerduty.routing_key_env), ctx
    )
