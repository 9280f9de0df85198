"""The gateway client: follow the control topic with confluent-kafka, answer ``decide`` from memory.

``start()`` reads the compacted topic from the beginning up to the end offsets it saw at start and
only then reports ready, so a (re)started gateway applies the state in force before its first
request. A daemon thread then follows new records and drops expired commands. ``decide`` never
touches Kafka; it reads two dicts under the GIL (a command is applied by one dict assignment).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from spendfuse.control.signing import Verifier, signature_header
from spendfuse.gateway.decision import Decision
from spendfuse.gateway.errors import GatewayError, GatewayNotReadyError
from spendfuse.gateway.state import ControlState
from spendfuse.schemas.topics import CONTROL

if TYPE_CHECKING:
    from spendfuse.gateway.config import GatewaySettings

log = logging.getLogger(__name__)
OnRecord = Callable[[str, bytes | None, float], None]


class ControlClient:
    """Embed one per gateway process; call :meth:`start` once, then :meth:`decide` per request."""

    def __init__(
        self,
        bootstrap_servers: str,
        verifier: Verifier,
        *,
        topic: str = CONTROL,
        config: Mapping[str, Any] | None = None,
        on_record: OnRecord | None = None,
        sweep_interval_s: float = 1.0,
    ) -> None:
        self.topic = topic
        self.state = ControlState(verifier)
        self.on_record = on_record
        self.sweep_interval_s = sweep_interval_s
        self._conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"spendfuse-gateway-{uuid.uuid4().hex}",  # offsets are never committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "isolation.level": "read_committed",
            **(config or {}),
        }
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings | None = None, **kw: Any) -> ControlClient:
        from spendfuse.gateway.config import GatewaySettings  # pydantic-settings only if used

        settings = settings or GatewaySettings()
        if not settings.bootstrap_servers:
            raise GatewayError("no Kafka configured: set SPENDFUSE_GATEWAY_BOOTSTRAP_SERVERS")
        return cls(
            settings.bootstrap_servers, Verifier(settings.key_specs()), topic=settings.topic, **kw
        )

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.state.counts)

    def decide(self, request: Mapping[str, Any], now: float | None = None) -> Decision:
        """Allow, deny (with reason) or degrade (with parameters) one request, from memory."""
        return self.state.decide(request, time.time() if now is None else now)

    def start(self, timeout_s: float = 30.0) -> ControlClient:
        """Load the compacted state, then follow; raise if it is not loaded within ``timeout_s``."""
        consumer = Consumer(self._conf)
        try:
            ends = self._end_offsets(consumer, timeout_s)
        except GatewayError:
            consumer.close()
            raise
        parts = list(ends)
        consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in parts])
        self._thread = threading.Thread(
            target=self._run, args=(consumer, ends), name="spendfuse-control", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout_s):
            self.close()
            raise GatewayNotReadyError(
                f"control state not loaded from {self.topic} in {timeout_s}s: {self._error}"
            )
        return self

    def _end_offsets(self, consumer: Consumer, timeout_s: float) -> dict[int, int]:
        """End offset per partition, waiting for the topic and its leaders (a gateway may start
        before spendfuse has created it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                meta = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                if meta is not None and meta.error is None and meta.partitions:
                    return {p: consumer.get_watermark_offsets(
                        TopicPartition(self.topic, p), timeout=5)[1] for p in meta.partitions}
                problem = f"control topic {self.topic} not found; start the spendfuse worker"
            except KafkaException as exc:
                problem = f"cannot read {self.topic}: {exc}"
            if time.monotonic() > deadline:
                raise GatewayNotReadyError(problem)
            time.sleep(0.5)

    def _run(self, consumer: Consumer, ends: dict[int, int]) -> None:
        pending = {p for p, end in ends.items() if end > 0}
        if not pending:
            self._ready.set()
        next_sweep = time.monotonic() + self.sweep_interval_s
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.05):
                    self._on_message(msg, pending, ends)
                if pending == set() and not self._ready.is_set():
                    self._ready.set()
                if time.monotonic() >= next_sweep:
                    self.state.expire(time.time())
                    next_sweep = time.monotonic() + self.sweep_interval_s
        except BaseException as exc:  # pragma: no cover - surfaced through start()/ready
            self._error = exc
            log.exception("control client stopped")
        finally:
            consumer.close()

    def _on_message(self, msg: Message, pending: set[int], ends: dict[int, int]) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
            else:
                log.warning("control topic error: %s", err)
            return
        now = time.time()
        outcome = self.state.apply_record(
            msg.key(), msg.value(), signature_header(msg.headers()), now
        )
        if outcome not in ("applied", "restored", "duplicate", "shadow", "expired"):
            log.warning("refused control record %r at offset %s: %s",
                        msg.key(), msg.offset(), outcome)  # fmt: skip
        if msg.offset() >= ends.get(msg.partition(), 0) - 1:
            pending.discard(msg.partition())
        if self.on_record is not None:
            self.on_record(outcome, msg.key(), now)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> ControlClient:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()
