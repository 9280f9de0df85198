"""The notifier at runtime: route, group, inhibit, silence, deliver, record; replicas agree.

Alertmanager's dispatcher on Kafka, in two stages inside one process:

1. **Route.** Consumer group ``<group>-route`` reads ``spendfuse.alerts``, routes each alert by the
   rule files (reloaded on change) and re-publishes it once per group it belongs to on
   ``spendfuse.notify.groups``, partitioned by the group key. Offsets commit after the broker has
   the copies, so an alert is never lost between the stages.
2. **Dispatch.** Consumer group ``<group>`` reads the groups topic. Each replica owns the groups
   of the partitions it is assigned, so exactly one replica sends for a group. A group's state
   (its alerts, what was notified, when, where its thread lives) is written to the compacted
   delivery ledger ``spendfuse.notify.log`` (key: group key) *before* the offset commits, and
   again after each delivery; a group with nothing left is tombstoned, so the ledger holds open
   incidents only. Every replica tails the ledger, so a replica assigned a partition first reads
   the ledger to its end and continues where the previous owner stopped; the ledger also gives
   each replica every firing alert as an inhibition source.

Grouping, timing and muting are the pure :class:`~spendfuse.rules.grouping.Dispatcher`.
Silences come from the compacted ``spendfuse.silences`` topic, inhibition sources from the
firing alerts and the enforced commands on ``spendfuse.control`` (which also give the lift hint
for each command). A failed delivery leaves its group unchanged and is retried with capped
exponential backoff (429: Slack's ``Retry-After``) for as long as it takes; each failure is
counted by receiver and reason, and a receiver that keeps failing raises an alert of its own,
``notifier_delivery_failing``, resolved when it recovers.

The window left: a crash after a receiver took a notification but before the ledger write
re-sends that one notification (Slack's API has no idempotency key; PagerDuty dedups by key).
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
import zlib
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from pydantic import ValidationError

from spendfuse.rules.grouping import Dispatcher, Notification
from spendfuse.rules.ids import stable_id
from spendfuse.rules.reload import RulesWatcher
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import decode, encode
from spendfuse.schemas.command import ControlCommand
from spendfuse.settings import Settings
from spendfuse.silence_store import silences_path
from spendfuse.streams.notify.metrics import NotifyMetrics
from spendfuse.streams.notify.receivers import DeliveryError, ReceiverContext, Registry
from spendfuse.streams.notify.silence import SilenceBook
from spendfuse.streams.notify.topics import NotifyTopics, ensure_topics

log = logging.getLogger(__name__)
SELF_ALERT_RULE = "notifier_delivery_failing"
MAX_LIFT_HINTS = 50_000
TRANSIENT = ("ratelimited", "connection", "http_5")  # reasons that are an outage, not a setup bug


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 1.0
    max_s: float = 300.0

    def delay_s(self, attempt: int) -> float:
        """Capped exponential backoff with jitter, so a recovering receiver is not stampeded."""
        return min(self.max_s, self.base_s * 2 ** min(attempt, 30)) * random.uniform(0.5, 1.0)


@dataclass(slots=True)
class NotifyOptions:
    group_id: str = "spendfuse-notify"
    groups_partitions: int = 4
    tick_s: float = 0.2
    retry: RetryPolicy = RetryPolicy()
    failing_after: int = 3  # attempts before a transient outage is alerted on
    max_alert_age_s: int = 7 * 86400
    file_sync_s: float = 5.0


def _partition(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


class Notifier:
    """One notifier replica. ``run(stop)`` until ``stop`` is set."""

    def __init__(
        self,
        bootstrap: str,
        settings: Settings,
        ruleset: RuleSet,
        *,
        topics: NotifyTopics | None = None,
        options: NotifyOptions | None = None,
        watcher: RulesWatcher | None = None,
        environ: dict[str, str] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.settings = settings
        self.topics = topics or NotifyTopics()
        self.opts = options or NotifyOptions(group_id=settings.notify_group_id)
        self.watcher = watcher
        self.clock = clock
        self.metrics = metrics or NotifyMetrics()
        self.lift_hints: OrderedDict[str, str] = OrderedDict()  # bounded: see _apply_command
        self.ctx = ReceiverContext(settings, self.lift_hints, dict(environ or {}))
        self.registry = Registry(ruleset.receivers, self.ctx)
        self.dispatcher = Dispatcher(ruleset, integrations=self.registry.integrations)
        self.silences = SilenceBook(self.topics.silences)
        self.counts: Counter[str] = Counter()
        self.sent: list[Notification] = []  # recent deliveries, for tests and the benchmark
        self.failing: dict[str, str] = {}  # "receiver/integration" -> self-alert id
        self.owned: set[int] = set()
        self._ledger_pos = 0
        self._ledger_needed = 0
        self._partitions = self.opts.groups_partitions
        self._producer: Producer | None = None
        self._received_ms: dict[str, int] = {}

    # -- setup -------------------------------------------------------------------------------

    def _ensure_topics(self) -> None:
        t = self.topics
        login = self.settings.kafka_client_config()
        ensure_topics(
            self.bootstrap,
            {
                t.groups: (self.opts.groups_partitions, False),
                t.ledger: (1, True),
                t.silences: (1, True),
            },
            config=login,
        )
        ensure_topics(self.bootstrap, {t.alerts: (1, False), t.control: (1, True)}, config=login)

    def _consumers(self) -> tuple[Consumer, Consumer, Consumer]:
        base = {
            "bootstrap.servers": self.bootstrap,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            **self.settings.kafka_client_config(),
        }
        router = Consumer({**base, "group.id": f"{self.opts.group_id}-route"})
        router.subscribe([self.topics.alerts])
        groups = Consumer({**base, "group.id": self.opts.group_id})
        groups.subscribe(
            [self.topics.groups],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )
        tail = Consumer({**base, "group.id": f"{self.opts.group_id}-tail-{uuid.uuid4().hex}"})
        meta = tail.list_topics(timeout=30).topics
        self._partitions = len(meta[self.topics.groups].partitions)
        assignment = [
            TopicPartition(self.topics.ledger, 0, OFFSET_BEGINNING),
            TopicPartition(self.topics.silences, 0, OFFSET_BEGINNING),
        ]
        assignment += [
            TopicPartition(self.topics.control, p, OFFSET_BEGINNING)
            for p in meta[self.topics.control].partitions
        ]
        tail.assign(assignment)
        self._tail = tail
        return router, groups, tail

    def _on_assign(self, _consumer: Consumer, parts: list[TopicPartition]) -> None:
        high = self._ledger_end()
        self._ledger_needed = max(self._ledger_needed, high)
        self.owned |= {p.partition for p in parts}
        log.info("notifier owns group partitions %s (ledger to %d)", sorted(self.owned), high)

    def _on_revoke(self, _consumer: Consumer, parts: list[TopicPartition]) -> None:
        self.owned -= {p.partition for p in parts}

    def _ledger_end(self, timeout_s: float = 60.0) -> int:
        """The ledger's high watermark; a just-created topic may have no leader for a moment."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                part = TopicPartition(self.topics.ledger, 0)
                return int(self._tail.get_watermark_offsets(part, 10)[1])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def owns(self, key: str) -> bool:
        return _partition(key, self._partitions) in self.owned

    # -- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self._ensure_topics()
        producer = self._producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                **self.settings.kafka_client_config(),
            }
        )
        router, groups, tail = self._consumers()
        self._catch_up(tail, None)
        next_sync = next_reload = 0.0
        try:
            while not stop.is_set():
                self._drain_tail(tail)
                self._route(router, producer)
                self._take_groups(groups, producer)
                if self._ledger_pos >= self._ledger_needed:
                    self._deliver_due(producer)
                now = self.clock()
                mono = now.timestamp()
                if mono >= next_sync:
                    next_sync = mono + self.opts.file_sync_s
                    self._housekeeping(producer, now)
                if self.watcher is not None and mono >= next_reload:
                    next_reload = mono + self.settings.rules_reload_s
                    self._reload()
                stop.wait(self.opts.tick_s)
        finally:
            producer.flush(10)
            for consumer in (router, groups, tail):
                consumer.close()

    def _catch_up(self, tail: Consumer, stop: threading.Event | None) -> None:
        """Read the ledger (and the silences, commands) up to their ends before owning groups."""
        high = self._ledger_end()
        self._ledger_needed = max(self._ledger_needed, high)
        while self._ledger_pos < self._ledger_needed and not (stop and stop.is_set()):
            self._drain_tail(tail, 0.5)

    def _drain_tail(self, tail: Consumer, timeout: float = 0.0) -> None:
        for msg in tail.consume(1000, timeout):
            if msg.error():
                continue
            topic = msg.topic()
            if topic == self.topics.ledger:
                self._apply_ledger(msg)
                self._ledger_pos = msg.offset() + 1
            elif topic == self.topics.silences:
                self.silences.apply(msg.key(), msg.value())
            else:
                self._apply_command(msg.value())

    def _apply_ledger(self, msg: Message) -> None:
        key = msg.key().decode() if msg.key() else None
        if key is None:
            return
        if self.owns(key) and msg.offset() >= self._ledger_needed:
            return  # our own write coming back: memory is already newer
        groups = self.dispatcher.state["groups"]
        if msg.value() is None:
            groups.pop(key, None)
            return
        try:
            groups[key] = orjson.loads(msg.value())
        except orjson.JSONDecodeError:
            self.metrics.bad_records.labels("ledger").inc()

    def _apply_command(self, value: bytes | None) -> None:
        if value is None:
            return
        try:
            cmd = decode(value, ControlCommand)
        except (orjson.JSONDecodeError, ValidationError, ValueError):
            return
        self.dispatcher.observe_command(cmd)
        if cmd.how_to_lift:
            self.lift_hints[cmd.command_id] = cmd.how_to_lift
            while len(self.lift_hints) > MAX_LIFT_HINTS:
                self.lift_hints.popitem(last=False)

    # -- stage 1: route ----------------------------------------------------------------------

    def _route(self, router: Consumer, producer: Producer) -> None:
        msgs = [m for m in router.consume(200, 0.05) if not m.error()]
        if not msgs:
            return
        now = self.clock()
        for msg in msgs:
            try:
                alert = decode(msg.value(), Alert)
            except (orjson.JSONDecodeError, ValidationError, ValueError) as exc:
                log.warning(
                    "unreadable alert at %s[%s]@%s skipped: %s",
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    exc,
                )
                self.metrics.bad_records.labels("alerts").inc()
                self.counts["bad"] += 1
                continue
            _kind, ts_ms = msg.timestamp()
            for key, fresh in self.dispatcher.targets(alert, now):
                value = orjson.dumps(
                    {"group": fresh, "alert": orjson.loads(encode(alert)), "received_ms": ts_ms}
                )
                producer.produce(
                    self.topics.groups,
                    key=key.encode(),
                    value=value,
                    partition=_partition(key, self._partitions),
                )
            self.counts["routed"] += 1
        if producer.flush(30):
            raise RuntimeError(f"groups topic {self.topics.groups} unreachable")
        router.commit(message=msgs[-1], asynchronous=False)

    # -- stage 2: group ----------------------------------------------------------------------

    def _take_groups(self, groups: Consumer, producer: Producer) -> None:
        msgs = [m for m in groups.consume(200, 0.05) if not m.error()]
        if self._ledger_pos < self._ledger_needed:
            self._catch_up(self._tail, None)  # just assigned: the previous owner's state first
        if not msgs:
            return
        changed: set[str] = set()
        for msg in msgs:
            key = msg.key().decode()
            try:
                record = orjson.loads(msg.value())
                alert = Alert.model_validate(record["alert"])
            except (orjson.JSONDecodeError, ValidationError, KeyError, TypeError):
                self.metrics.bad_records.labels("groups").inc()
                continue
            if self.dispatcher.add(key, record["group"], alert):
                changed.add(key)
                if record.get("received_ms"):
                    self._received_ms.setdefault(f"{key}|{alert.alert_id}", record["received_ms"])
            self.counts["grouped"] += 1
        self._write_ledger(producer, changed)
        groups.commit(asynchronous=False)

    def _write_ledger(self, producer: Producer, keys: set[str]) -> None:
        """Group state to the ledger and wait: the caller commits or moves on only after."""
        if not keys:
            return
        groups = self.dispatcher.state["groups"]
        for key in keys:
            state = groups.get(key)
            producer.produce(
                self.topics.ledger,
                key=key.encode(),
                value=None if state is None else orjson.dumps(state),
            )
        if producer.flush(30):
            raise RuntimeError(f"delivery ledger {self.topics.ledger} unreachable")
        self.metrics.open_groups.set(len(groups))

    # -- delivery ----------------------------------------------------------------------------

    def _deliver_due(self, producer: Producer) -> None:
        now = self.clock()
        owned = [k for k in self.dispatcher.state["groups"] if self.owns(k)]
        notes = self.dispatcher.pending(now, self.silences.active(), owned)
        changed: set[str] = set()
        for note in notes:
            changed.add(note.group_key)
            if note.empty:
                self.dispatcher.mark_sent(note, now)
                self.counts["muted"] += len(note.muted)
                continue
            self._deliver(note, now, producer)
        self._write_ledger(producer, changed)

    def _deliver(self, note: Notification, now: datetime, producer: Producer) -> None:
        receiver = self.registry.get(note.receiver, note.integration)
        where = f"{note.receiver}/{note.integration}"
        try:
            if receiver is None:
                raise DeliveryError("no_receiver", f"{where} is not configured")
            note.thread = receiver.send(note)
        except DeliveryError as exc:
            group = self.dispatcher.state["groups"].get(note.group_key, {})
            attempts = group.get("attempts", 0)
            delay = exc.retry_after_s or self.opts.retry.delay_s(attempts)
            if exc.thread is not None:
                group["thread"] = exc.thread  # what landed stays landed
            self.dispatcher.mark_failed(note.group_key, now + timedelta(seconds=delay))
            self.metrics.record_error(note.receiver, note.integration, exc.reason)
            self.counts[f"error:{exc.reason}"] += 1
            log.warning(
                "%s did not take %s (%s); retry %d in %.1fs",
                where,
                note.group_key,
                exc,
                attempts + 1,
                delay,
            )
            if not exc.reason.startswith(TRANSIENT) or attempts + 1 >= self.opts.failing_after:
                self._self_alert(note, where, exc, now, producer)
            return
        self.dispatcher.mark_sent(note, now)
        self._retry_now(note, now)
        self.sent.append(note)
        del self.sent[:-1000]
        self.counts["delivered"] += 1
        self.metrics.notifications.labels(note.receiver, note.integration, note.kind).inc()
        now_ms = now.timestamp() * 1000
        for alert in [*note.firing, *note.resolved]:
            received = self._received_ms.pop(f"{note.group_key}|{alert.alert_id}", None)
            if received:
                self.metrics.delivery_seconds.labels(note.integration).observe(
                    max(0.0, (now_ms - received) / 1000)
                )
        if note.firing and all(a.rule == SELF_ALERT_RULE for a in note.firing):
            return
        open_id = self.failing.get(where) or self._open_self_alert(where)
        if open_id is not None:
            self._resolve_self_alert(where, open_id, now, producer)

    def _retry_now(self, note: Notification, now: datetime) -> None:
        """The receiver delivers again: its other held groups go at the next tick instead of
        each waiting out its own backoff (up to ``max_s`` after an outage)."""
        for group in self.dispatcher.state["groups"].values():
            if (
                group.get("retry_ms")
                and group["receiver"] == note.receiver
                and (group.get("integration") == note.integration)
            ):
                group["retry_ms"] = None

    # -- the notifier's own alert ------------------------------------------------------------

    def _failing_alert(
        self, where: str, alert_id: str, status: str, reason: str, now: datetime, fired: datetime
    ) -> Alert:
        receiver, _, integration = where.partition("/")
        return Alert(
            alert_id=alert_id,
            fingerprint=f"{SELF_ALERT_RULE}/{where}",
            rule=SELF_ALERT_RULE,
            status=status,
            severity="high",
            tenant_id="spendfuse",
            use_case_id="notifier",  # type: ignore[arg-type]
            summary=(
                f"Receiver {where} is failing ({reason}); its notifications are held and retried"
                if status == "firing"
                else f"Receiver {where} delivers again"
            ),
            evidence=Evidence(metric="delivery_errors", value=1.0),
            fired_at=fired,
            resolved_at=now if status == "resolved" else None,
            labels={
                "receiver": receiver,
                "integration": integration,
                "reason": reason,
                "action": "none",
            },
            how_to_silence=f"spendfuse silence add --matcher 'rule=\"{SELF_ALERT_RULE}\"' "
            "--for 1h --author you --comment why",
        )

    def _self_alert(
        self, note: Notification, where: str, exc: DeliveryError, now: datetime, producer: Producer
    ) -> None:
        if note.firing and all(a.rule == SELF_ALERT_RULE for a in note.firing):
            return  # the failing receiver's own alert: do not alert about alerting
        if where in self.failing:
            return
        alert_id = stable_id(SELF_ALERT_RULE, where, int(now.timestamp() // 3600))
        self.failing[where] = alert_id
        alert = self._failing_alert(where, alert_id, "firing", exc.reason, now, now)
        producer.produce(self.topics.alerts, key=alert.fingerprint.encode(), value=encode(alert))
        log.error("receiver %s failing (%s): raised %s", where, exc, SELF_ALERT_RULE)

    def _open_self_alert(self, where: str) -> str | None:
        """The id of a firing self-alert about ``where`` (raised by any replica), if any."""
        fingerprint = f"{SELF_ALERT_RULE}/{where}"
        for group in self.dispatcher.state["groups"].values():
            data = group["alerts"].get(fingerprint)
            if data is not None and data["status"] == "firing":
                return str(data["alert_id"])
        return None

    def _resolve_self_alert(
        self, where: str, alert_id: str, now: datetime, producer: Producer
    ) -> None:
        self.failing.pop(where, None)
        alert = self._failing_alert(where, alert_id, "resolved", "recovered", now, now)
        producer.produce(self.topics.alerts, key=alert.fingerprint.encode(), value=encode(alert))

    # -- housekeeping ------------------------------------------------------------------------

    def _housekeeping(self, producer: Producer, now: datetime) -> None:
        self.silences.sync_file(silences_path(self.settings.data_dir), producer, now)
        self.silences.forget_ended(producer, now)
        stale = self.dispatcher.drop_stale(now, self.opts.max_alert_age_s)
        self._write_ledger(producer, {k for k in stale if self.owns(k)})
        if len(self._received_ms) > 100_000:
            self._received_ms.clear()
        self.metrics.bad_records.labels("silences").inc(self.silences.bad)
        self.silences.bad = 0
        producer.poll(0)

    def _reload(self) -> None:
        assert self.watcher is not None
        result = self.watcher.poll()
        if result.errors:
            log.error(
                "rule files refused, the notifier keeps its routes:\n%s",
                "\n".join(str(i) for i in result.errors),
            )
        if result.ruleset is not None:
            self.registry = Registry(result.ruleset.receivers, self.ctx, self.registry.modules)
            self.dispatcher.ruleset = result.ruleset
            self.dispatcher.integrations = self.registry.integrations
            log.warning("notifier routes reloaded: %d receivers", len(result.ruleset.receivers))

    def state_summary(self) -> dict[str, Any]:
        return {
            "groups": len(self.dispatcher.state["groups"]),
            "owned": sorted(self.owned),
            "counts": dict(self.counts),
        }
