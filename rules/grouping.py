"""Notification grouping and timing for on-call, shaped after Alertmanager's dispatcher.

Pure and clocked by the caller (``now``), state as plain JSON-able data, so the notifier can keep
each group in its compacted delivery ledger and tests can drive it. Per route target and
integration (slack, console, webhook, pagerduty), alerts group by ``group_by`` labels:

* a new group waits ``group_wait`` (to collect related alerts) before its first notification;
* a change (new alert, one resolved) is sent at most every ``group_interval``;
* a group with nothing new re-sends its firing alerts every ``repeat_interval``;
* silenced or inhibited alerts are left out; a resolved alert is sent only if its firing was
  (dedup: each fingerprint is announced firing once and resolved once).

Delivery is two-phase so nothing is dropped: :meth:`Dispatcher.pending` says what is due without
changing anything; the caller delivers, then calls :meth:`Dispatcher.mark_sent` (the group
forgets resolved alerts only now) or :meth:`Dispatcher.mark_failed` (the group stays as it was
and is retried at the given time). :meth:`Dispatcher.flush` does both at once for callers that
cannot fail (tests, the benchmark). A group with no alerts left is deleted, so the state holds
open incidents only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
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

Integrations = Callable[[str], list[str]]


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
    integration: str = "default"
    thread: dict[str, Any] = field(default_factory=dict)  # where the group's message lives

    @property
    def empty(self) -> bool:
        return not (self.firing or self.resolved)


def group_key(receiver: str, integration: str, labels: dict[str, str]) -> str:
    return f"{receiver}/{integration}:{json.dumps(labels, sort_keys=True)}"


def new_group(
    target: RouteTarget, integration: str, labels: dict[str, str], now_ms: int
) -> dict[str, Any]:
    return {
        "receiver": target.receiver,
        "channel": target.channel,
        "integration": integration,
        "labels": labels,
        "wait_s": target.group_wait_s,
        "interval_s": target.group_interval_s,
        "repeat_s": target.repeat_interval_s,
        "created_ms": now_ms,
        "sent_ms": None,
        "retry_ms": None,
        "attempts": 0,
        "dirty": True,
        "alerts": {},
        "notified": [],
        "thread": {},
    }


class Dispatcher:
    def __init__(
        self,
        ruleset: RuleSet,
        state: dict[str, Any] | None = None,
        integrations: Integrations | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.state = state if state is not None else {}
        self.state.setdefault("groups", {})
        self.state.setdefault("commands", {})  # target key -> {labels, expires_ms}
        self.integrations = integrations or (lambda _receiver: ["default"])

    # -- intake ------------------------------------------------------------------------------

    def targets(self, alert: Alert, now: datetime) -> list[tuple[str, dict[str, Any]]]:
        """``(group key, fresh group)`` for every group the alert belongs to, by the routes."""
        labels = alert_labels(alert)
        now_ms = to_epoch_ms(now)
        out = []
        for target in route(alert, self.ruleset):
            glabels = {k: labels.get(k, "") for k in target.group_by}
            for integration in self.integrations(target.receiver):
                key = group_key(target.receiver, integration, glabels)
                out.append((key, new_group(target, integration, glabels, now_ms)))
        return out

    def add(self, key: str, fresh: dict[str, Any], alert: Alert) -> bool:
        """Put the alert in its group (made from ``fresh`` if new); False if nothing changed."""
        group = self.state["groups"].setdefault(key, fresh)
        known = group["alerts"].get(alert.fingerprint)
        if known and known["status"] == alert.status and known["alert_id"] == alert.alert_id:
            return False  # a repeat of what the group already holds: dedup
        if (
            known
            and known["status"] == "resolved"
            and alert.status == "firing"
            and (known["alert_id"] == alert.alert_id)
        ):
            return False  # a late copy of a firing already resolved
        group["alerts"][alert.fingerprint] = alert.model_dump(mode="json")
        group["dirty"] = True
        group["touched_ms"] = max(group.get("touched_ms", 0), fresh["created_ms"])
        return True

    def observe_alert(self, alert: Alert, now: datetime) -> list[str]:
        return [key for key, fresh in self.targets(alert, now) if self.add(key, fresh, alert)]

    def observe_command(self, cmd: ControlCommand) -> None:
        if cmd.kind is CommandKind.RESTORE:
            self.state["commands"].pop(cmd.key(), None)
            return
        labels = command_source_labels(cmd)
        if labels is not None:
            expires = to_epoch_ms(cmd.expires_at) if cmd.expires_at else None
            self.state["commands"][cmd.key()] = {"labels": labels, "expires_ms": expires}

    def should_notify(
        self, alert: Alert, now: datetime, silences: Iterable[Silence] = ()
    ) -> list[Notification]:
        """Take in one alert and return whatever notifications are due now."""
        self.observe_alert(alert, now)
        return self.flush(now, silences)

    # -- due notifications -------------------------------------------------------------------

    def pending(
        self, now: datetime, silences: Iterable[Silence] = (), keys: Iterable[str] | None = None
    ) -> list[Notification]:
        """The notifications due at ``now`` (among ``keys``), empty ones included; no change."""
        now_ms = to_epoch_ms(now)
        groups = self.state["groups"]
        due = []
        for key in list(groups if keys is None else keys):
            group = groups.get(key)
            kind = _due(group, now_ms) if group is not None else None
            if kind is not None:
                due.append((key, group, kind))
        if not due:
            return []  # the common tick: nothing due, no inhibition sources to build
        silences = list(silences)
        sources = self.sources(now_ms)
        return [
            self._notification(key, group, kind, now, silences, sources) for key, group, kind in due
        ]

    def mark_sent(self, note: Notification, now: datetime) -> bool:
        """Record a delivered (or empty) notification; True if its group is now gone."""
        group = self.state["groups"].get(note.group_key)
        if group is None:
            return True
        group.update(
            sent_ms=to_epoch_ms(now), dirty=False, retry_ms=None, attempts=0, thread=note.thread
        )
        for alert in note.firing:
            if alert.fingerprint not in group["notified"]:
                group["notified"].append(alert.fingerprint)
        for fp, alert in list(group["alerts"].items()):
            if alert["status"] == "resolved":
                del group["alerts"][fp]
                if fp in group["notified"]:
                    group["notified"].remove(fp)
        if not group["alerts"]:
            del self.state["groups"][note.group_key]
            return True
        return False

    def mark_failed(self, key: str, retry_at: datetime) -> None:
        """Keep the group as it was; try again at ``retry_at`` (backoff chosen by the caller)."""
        group = self.state["groups"].get(key)
        if group is not None:
            group["retry_ms"] = to_epoch_ms(retry_at)
            group["attempts"] = group.get("attempts", 0) + 1

    def flush(self, now: datetime, silences: Iterable[Silence] = ()) -> list[Notification]:
        """Due notifications, taken as delivered at once."""
        out = []
        for note in self.pending(now, silences):
            self.mark_sent(note, now)
            if not note.empty:
                out.append(note)
        return out

    def drop_stale(self, now: datetime, max_age_s: int) -> list[str]:
        """Forget groups with no news (no alert added) for ``max_age_s`` of wall-clock time:
        their resolution will not come (the worker lost it). Bounds the state; the keys."""
        cutoff = to_epoch_ms(now) - max_age_s * 1000
        groups = self.state["groups"]
        stale = [k for k, g in groups.items() if g.get("touched_ms", g["created_ms"]) < cutoff]
        for key in stale:
            del groups[key]
        return stale

    # -- inhibition --------------------------------------------------------------------------

    def sources(self, now_ms: int) -> list[dict[str, str]]:
        """Inhibition sources: every firing alert of every group, and enforced commands."""
        seen: dict[str, dict[str, str]] = {}
        for group in self.state["groups"].values():
            for fp, data in group["alerts"].items():
                if data["status"] == "firing" and fp not in seen:
                    seen[fp] = alert_labels(Alert.model_validate(data))
        commands = self.state["commands"]
        for key, entry in list(commands.items()):
            if entry["expires_ms"] is not None and entry["expires_ms"] <= now_ms:
                del commands[key]  # a command that lapsed explains nothing (and is forgotten)
        return [*seen.values(), *(e["labels"] for e in commands.values())]

    def _notification(
        self,
        key: str,
        group: dict[str, Any],
        kind: str,
        now: datetime,
        silences: list[Silence],
        sources: list[dict[str, str]],
    ) -> Notification:
        note = Notification(
            group["receiver"],
            group["channel"],
            key,
            group["labels"],
            kind,
            integration=group.get("integration", "default"),
            thread=dict(group.get("thread") or {}),
        )
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
        return note

    def _muted(
        self, alert: Alert, sources: list[dict[str, str]], now: datetime, silences: list[Silence]
    ) -> str | None:
        labels = alert_labels(alert)
        silence = silenced_by(labels, silences, now)
        if silence is not None:
            return f"silenced by {silence.id} ({silence.created_by}: {silence.comment})"
        source = inhibited_by(labels, sources, self.ruleset.inhibit_rules)
        return f"inhibited by {source}" if source else None


def _due(group: dict[str, Any], now_ms: int) -> str | None:
    """Which kind of notification the group owes at ``now_ms``, if any."""
    if group.get("retry_ms") is not None and now_ms < group["retry_ms"]:
        return None  # backing off after a failed delivery
    sent = group["sent_ms"]
    if sent is None:
        return "new" if now_ms >= group["created_ms"] + group["wait_s"] * 1000 else None
    if group["dirty"]:
        return "update" if now_ms >= sent + group["interval_s"] * 1000 else None
    firing = any(a["status"] == "firing" for a in group["alerts"].values())
    return "repeat" if firing and now_ms >= sent + group["repeat_s"] * 1000 else None
