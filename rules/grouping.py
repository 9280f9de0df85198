"""Notification grouping and timing for on-call, shaped after Alertmanager's dispatcher.

Pure and clocked by the caller (``now``), state as plain data, so the Slack notifier can keep it
in a table and tests can drive it. Per route target, alerts group by ``group_by`` labels:

* a new group waits ``group_wait`` (to collect related alerts) before its first notification;
* a change (new alert, one resolved) is sent at most every ``group_interval``;
* a group with nothing new re-sends its firing alerts every ``repeat_interval``;
* silenced or inhibited alerts are left out; a resolved alert is sent only if its firing was
  (dedup: each fingerprint is announced firing once and resolved once).

The notifier calls :meth:`Dispatcher.should_notify` for each alert from ``spendfuse.alerts``,
:meth:`Dispatcher.observe_command` for each control command, and :meth:`Dispatcher.flush` on a
timer; each returns the :class:`Notification` objects due now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spendfuse.rules.inhibition import command_source_labels, inhibited_by
from spendfuse.rules.routing import RouteTarget, alert_labels, route
from spendfuse.rules.ruleset import RuleSet
from spendfuse.rules.silences import Silence, silenced_by
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.command import CommandKind, ControlCommand
from spendfuse.schemas.common import to_epoch_ms


@dataclass(slots=True)
class Notification:
    receiver: str
    channel: str | None
    group_key: str
    group_labels: dict[str, str]
    kind: str  # "new" | "update" | "repeat"
    firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    muted: dict[str, str] = field(default_factory=dict)  # fingerprint -> why (silence/source)


class Dispatcher:
    def __init__(self, ruleset: RuleSet, state: dict[str, Any] | None = None) -> None:
        self.ruleset = ruleset
        self.state = state if state is not None else {}
        self.state.setdefault("groups", {})
        self.state.setdefault("active", {})  # fingerprint -> labels of firing alerts
        self.state.setdefault("commands", {})  # target key -> source labels

    def observe_alert(self, alert: Alert, now: datetime) -> None:
        labels = alert_labels(alert)
        if alert.status == "firing":
            self.state["active"][alert.fingerprint] = labels
        else:
            self.state["active"].pop(alert.fingerprint, None)
        for target in route(alert, self.ruleset):
            self._add_to_group(target, alert, labels, now)

    def observe_command(self, cmd: ControlCommand) -> None:
        if cmd.kind is CommandKind.RESTORE:
            self.state["commands"].pop(cmd.key(), None)
            return
        labels = command_source_labels(cmd)
        if labels is not None:
            self.state["commands"][cmd.key()] = labels

    def should_notify(self, alert: Alert, now: datetime, silences: Iterable[Silence] = ()
                      ) -> list[Notification]:  # fmt: skip
        """Take in one alert and return whatever notifications are due now."""
        self.observe_alert(alert, now)
        return self.flush(now, silences)

    def _add_to_group(self, target: RouteTarget, alert: Alert, labels: dict[str, str],
                      now: datetime) -> None:  # fmt: skip
        glabels = {k: labels.get(k, "") for k in target.group_by}
        key = f"{target.receiver}:{json.dumps(glabels, sort_keys=True)}"
        group = self.state["groups"].setdefault(key, {
            "receiver": target.receiver, "channel": target.channel, "labels": glabels,
            "wait_s": target.group_wait_s, "interval_s": target.group_interval_s,
            "repeat_s": target.repeat_interval_s, "created_ms": to_epoch_ms(now),
            "sent_ms": None, "dirty": True, "alerts": {}, "notified": [],
        })  # fmt: skip
        known = group["alerts"].get(alert.fingerprint)
        if known and known["status"] == alert.status and known["alert_id"] == alert.alert_id:
            return  # a repeat of what the group already holds: dedup
        group["alerts"][alert.fingerprint] = alert.model_dump(mode="json")
        group["dirty"] = True

    def flush(self, now: datetime, silences: Iterable[Silence] = ()) -> list[Notification]:
        out: list[Notification] = []
        silences = list(silences)
        now_ms = to_epoch_ms(now)
        for key in list(self.state["groups"]):
            group = self.state["groups"][key]
            kind = _due(group, now_ms)
            if kind is None:
                continue
            note = self._notification(key, group, kind, now, silences)
            group.update(sent_ms=now_ms, dirty=False)
            for fp, alert in list(group["alerts"].items()):
                if alert["status"] == "resolved":
                    del group["alerts"][fp]
                    if fp in group["notified"]:
                        group["notified"].remove(fp)
            if not group["alerts"]:
                del self.state["groups"][key]
            if note.firing or note.resolved:
                out.append(note)
        return out

    def _notification(self, key: str, group: dict[str, Any], kind: str, now: datetime,
                      silences: list[Silence]) -> Notification:  # fmt: skip
        note = Notification(group["receiver"], group["channel"], key, group["labels"], kind)
        sources = [*self.state["active"].values(), *self.state["commands"].values()]
        for fp, data in group["alerts"].items():
            alert = Alert.model_validate(data)
            if alert.status == "resolved":
                if fp in group["notified"]:
                    note.resolved.append(alert)
                continue
            why = self._muted(alert, sources, now, silences)
            if why:
                note.muted[fp] = why
                continue
            note.firing.append(alert)
            if fp not in group["notified"]:
                group["notified"].append(fp)
        return note

    def _muted(self, alert: Alert, sources: list[dict[str, str]], now: datetime,
               silences: list[Silence]) -> str | None:  # fmt: skip
        labels = alert_labels(alert)
        silence = silenced_by(labels, silences, now)
        if silence is not None:
            return f"silenced by {silence.id} ({silence.created_by}: {silence.comment})"
        source = inhibited_by(labels, sources, self.ruleset.inhibit_rules)
        return f"inhibited by {source}" if source else None


def _due(group: dict[str, Any], now_ms: int) -> str | None:
    """Which kind of notification the group owes at ``now_ms``, if any."""
    sent = group["sent_ms"]
    if sent is None:
        return "new" if now_ms >= group["created_ms"] + group["wait_s"] * 1000 else None
    if group["dirty"]:
        return "update" if now_ms >= sent + group["interval_s"] * 1000 else None
    firing = any(a["status"] == "firing" for a in group["alerts"].values())
    return "repeat" if firing and now_ms >= sent + group["repeat_s"] * 1000 else None
