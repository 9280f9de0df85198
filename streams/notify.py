"""The alert notifier: a separate consumer that delivers ``spendfuse.alerts`` to Slack.

Detection never waits on Slack: the worker only publishes alerts; this process reads them with
manual commits and delivers one at a time. It honours 429 + Retry-After, retries 5xx and
connection errors with capped exponential backoff for as long as Slack is down, and commits an
alert's offset only after it is delivered and recorded, so an outage loses nothing.

One incident, one thread: a firing alert is posted once; its resolution updates that message and
replies in its thread. Which message belongs to which incident is kept in a compacted topic (the
*delivery ledger*, keyed by fingerprint), so a restarted notifier neither re-posts what it already
delivered nor loses the thread. A repeat of a delivered alert (a worker re-issuing the same
``alert_id`` after a restart) is skipped. Without a Slack token, alerts print to the console.

The one window left: a crash after Slack accepted a post but before the ledger write re-posts
that single alert on restart (Slack's API has no idempotency key).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import ValidationError
from rich.console import Console
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from spendfuse.rules.routing import alert_labels
from spendfuse.rules.silences import Silence, silenced_by
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode
from spendfuse.schemas.errors import SpendfuseError
from spendfuse.schemas.topics import ALERTS
from spendfuse.settings import Settings
from spendfuse.silence_store import load_silences, silences_path
from spendfuse.streams.console import format_alert
from spendfuse.streams.slack_message import (
    Router,
    build_alert_message,
    build_resolution_reply,
    load_router,
)

log = logging.getLogger(__name__)
DELIVERY_LEDGER = "spendfuse.alerts.delivered"


class SlackDeliveryError(SpendfuseError):
    """Slack refused an alert for good (bad channel, bad token): retrying would not help."""


class DeliveryStoppedError(SpendfuseError):
    """The notifier was asked to stop while it waited to retry; the alert stays uncommitted."""


@dataclass(slots=True)
class ThreadRecord:
    """Where an incident's message lives and which of its transitions were delivered."""

    fingerprint: str
    alert_id: str
    channel: str
    ts: str
    delivered: list[str] = field(default_factory=list)


def plan_delivery(alert: Alert, record: ThreadRecord | None) -> str:
    """``skip`` (already delivered), ``post`` (new message) or ``resolve`` (update the thread)."""
    same = record is not None and record.alert_id == alert.alert_id
    if same and alert.status in record.delivered:  # type: ignore[union-attr]
        return "skip"
    if alert.status == "resolved" and same:
        return "resolve"
    return "post"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_s: float = 0.5
    max_s: float = 30.0

    def delay_s(self, attempt: int) -> float:
        """Capped exponential backoff with jitter, so recovering Slack is not stampeded."""
        return min(self.max_s, self.base_s * 2**attempt) * random.uniform(0.5, 1.0)


class Delivery(Protocol):
    def deliver(self, alert: Alert, record: ThreadRecord | None, plan: str) -> ThreadRecord: ...


class SlackDelivery:
    """Posts through slack-sdk's WebClient with spendfuse's own retry policy (no SDK retries)."""

    def __init__(
        self, client: WebClient, route: Router, stop: threading.Event,
        policy: RetryPolicy | None = None,
    ) -> None:  # fmt: skip
        self.client = client
        self.route = route
        self.stop = stop
        self.policy = policy or RetryPolicy()
        self.retries = 0

    def _call(self, method: str, alert: Alert, **kwargs: Any) -> Any:
        attempt = 0
        while True:
            try:
                return self.client.api_call(method, json=kwargs)
            except SlackApiError as exc:
                status = exc.response.status_code
                if status == 429:
                    delay = float(exc.response.headers.get("Retry-After", 1))
                elif status >= 500:
                    delay = self.policy.delay_s(attempt)
                else:
                    raise SlackDeliveryError(
                        f"{method} refused ({status} {exc.response.get('error')})"
                    ) from None
                why = f"HTTP {status}"
            except OSError as exc:  # connection refused/reset, timeouts (URLError is an OSError)
                delay, why = self.policy.delay_s(attempt), type(exc).__name__
            log.warning("slack %s failed for %s (%s); retry %d in %.2fs",
                        method, alert.fingerprint, why, attempt + 1, delay)  # fmt: skip
            self.retries += 1
            attempt += 1
            if self.stop.wait(delay):
                raise DeliveryStoppedError(f"stopped while retrying {method}")

    def deliver(self, alert: Alert, record: ThreadRecord | None, plan: str) -> ThreadRecord:
        message = build_alert_message(alert)
        if plan == "resolve" and record is not None:
            self._call("chat.update", alert, channel=record.channel, ts=record.ts, **message)
            self._call("chat.postMessage", alert, channel=record.channel, thread_ts=record.ts,
                       text=build_resolution_reply(alert))  # fmt: skip
            record.delivered.append(alert.status)
            return record
        resp = self._call("chat.postMessage", alert, channel=self.route(alert), **message)
        return ThreadRecord(alert.fingerprint, alert.alert_id, resp["channel"], resp["ts"],
                            [alert.status])  # fmt: skip


class ConsoleDelivery:
    """No token: print alerts (the ledger still records them, so restarts do not reprint)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)

    def deliver(self, alert: Alert, record: ThreadRecord | None, plan: str) -> ThreadRecord:
        self.console.print(format_alert(alert))
        if record is not None and plan == "resolve":
            record.delivered.append(alert.status)
            return record
        return ThreadRecord(alert.fingerprint, alert.alert_id, "console", "", [alert.status])


def ensure_ledger_topic(bootstrap: str, topic: str, timeout_s: float = 30.0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=timeout_s).topics:
        return
    spec = NewTopic(topic, num_partitions=1, replication_factor=1,
                    config={"cleanup.policy": "compact"})  # fmt: skip
    for future in admin.create_topics([spec], operation_timeout=timeout_s).values():
        try:
            future.result(timeout_s)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise


def load_ledger(bootstrap: str, topic: str, timeout_s: float = 30.0) -> dict[str, ThreadRecord]:
    """Read the compacted ledger to its end: fingerprint -> latest thread record."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ledger-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})  # fmt: skip
    records: dict[str, ThreadRecord] = {}
    try:
        parts = consumer.list_topics(topic, timeout=timeout_s).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
                for p in parts}  # fmt: skip
        pending = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        while pending:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            if msg.value() is not None:
                records[msg.key().decode()] = ThreadRecord(**orjson.loads(msg.value()))
            if msg.offset() >= ends[msg.partition()] - 1:
                pending.discard(msg.partition())
    finally:
        consumer.close()
    return records


class Notifier:
    """Consume alerts, deliver each once, record it, then commit its offset."""

    def __init__(
        self, bootstrap: str, delivery: Delivery, *, topic: str = ALERTS,
        ledger_topic: str = DELIVERY_LEDGER, group_id: str = "spendfuse-notify",
        on_delivered: Callable[[Alert, str], None] | None = None,
        silences: Callable[[], list[Silence]] | None = None,
    ) -> None:  # fmt: skip
        self.bootstrap = bootstrap
        self.delivery = delivery
        self.topic = topic
        self.ledger_topic = ledger_topic
        self.group_id = group_id
        self.on_delivered = on_delivered
        self.silences = silences
        self.counts: dict[str, int] = {"delivered": 0, "skipped": 0, "refused": 0}

    def run(self, stop: threading.Event) -> None:
        ensure_ledger_topic(self.bootstrap, self.ledger_topic)
        ledger = load_ledger(self.bootstrap, self.ledger_topic)
        producer = Producer({"bootstrap.servers": self.bootstrap, "enable.idempotence": True})
        consumer = Consumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.group_id,
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
        })  # fmt: skip
        consumer.subscribe([self.topic])
        try:
            while not stop.is_set():
                msg = consumer.poll(0.2)
                if msg is None or msg.error():
                    continue
                self._handle(msg, ledger, producer)
                consumer.commit(message=msg, asynchronous=False)
        except DeliveryStoppedError:
            log.info("notifier stopped during a retry; the alert will be delivered on restart")
        finally:
            consumer.close()
            producer.flush(10)

    def _handle(self, msg: Any, ledger: dict[str, ThreadRecord], producer: Producer) -> None:
        try:
            alert = decode(msg.value(), Alert)
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("undeliverable alert at %s[%s]@%s: %s",
                        msg.topic(), msg.partition(), msg.offset(), exc)  # fmt: skip
            self.counts["refused"] += 1
            return
        record = ledger.get(alert.fingerprint)
        if record is None and self._silenced(alert):
            return  # never posted: a silenced incident stays quiet, firing and resolved alike
        plan = plan_delivery(alert, record)
        if plan == "skip":
            self.counts["skipped"] += 1
            return
        try:
            record = self.delivery.deliver(alert, record, plan)
        except SlackDeliveryError as exc:
            log.error("alert %s (%s) not delivered: %s; printed instead",
                      alert.alert_id, alert.fingerprint, exc)  # fmt: skip
            ConsoleDelivery().deliver(alert, None, plan)
            self.counts["refused"] += 1
            return
        ledger[alert.fingerprint] = record
        producer.produce(self.ledger_topic, key=alert.fingerprint.encode(),
                         value=orjson.dumps(asdict(record)))  # fmt: skip
        if producer.flush(30):
            raise SpendfuseError(f"delivery ledger {self.ledger_topic} unreachable")
        self.counts["delivered"] += 1
        if self.on_delivered is not None:
            self.on_delivered(alert, plan)


    def _silenced(self, alert: Alert) -> bool:
        """Silences are maintenance windows in wall-clock time, checked at delivery."""
        if self.silences is None:
            return False
        silence = silenced_by(alert_labels(alert), self.silences(), datetime.now(UTC))
        if silence is None:
            return False
        log.info("alert %s (%s) silenced by %s (%s, until %s)", alert.alert_id,
                 alert.fingerprint, silence.id, silence.created_by, silence.ends_at)  # fmt: skip
        self.counts["silenced"] = self.counts.get("silenced", 0) + 1
        return True


def build_delivery(settings: Settings, stop: threading.Event) -> Delivery:
    if settings.slack_bot_token is None:
        return ConsoleDelivery()
    client = WebClient(token=settings.slack_bot_token.get_secret_value(),
                       base_url=settings.slack_base_url, timeout=10, retry_handlers=[])  # fmt: skip
    return SlackDelivery(client, load_router(settings.slack_router, settings.slack_channel), stop)


def run_notifier(settings: Settings) -> None:
    stop = threading.Event()
    store = silences_path(settings.data_dir)
    notifier = Notifier(settings.require_bootstrap(), build_delivery(settings, stop),
                        group_id=settings.notify_group_id,
                        silences=lambda: load_silences(store))  # fmt: skip
    try:
        notifier.run(stop)
    except KeyboardInterrupt:
        stop.set()
