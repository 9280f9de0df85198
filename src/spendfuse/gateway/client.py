"""The gateway client: follow the control topic with confluent-kafka, answer ``decide`` from memory.

``start()`` reads the compacted topic from the beginning up to the end offsets it saw at start and
only then reports ready, so a (re)started gateway applies the state in force before its first
request. A supervised daemon thread then follows new records, drops expired commands and checks
every ``freshness_interval_s`` that the broker still answers. ``decide`` never touches Kafka.

Fail mode (``fail_mode``), what ``decide`` answers while the client is not ready, that is before
the state is loaded (Kafka unavailable at start), when the broker has not answered for
``stale_after_s``, or while the consumer thread is being restarted after it died:

* ``open``: allow every request (spend control off, traffic never blocked by spendfuse);
* ``closed``: deny every request (nothing runs unless spendfuse can vouch for it);
* ``last_known_good`` (default): keep applying the last loaded state while it is younger than
  ``max_staleness_s``, then allow; before any state was loaded, allow.

``start()`` does not fail when Kafka is down: it returns a client that is not ready and keeps
trying (``start(require_ready=True)`` raises instead). The supervisor restarts a consumer loop
that raised, reloading the topic into a fresh state and swapping it in once loaded; the number of
restarts, the state's age and the fail-mode answers are in :meth:`ControlClient.stats` and, for
Prometheus, :func:`spendfuse.gateway.metrics.register`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from spendfuse.control.signing import Verifier, signature_header
from spendfuse.gateway.decision import ALLOW_UNAVAILABLE, DENY_UNAVAILABLE, Decision
from spendfuse.gateway.errors import GatewayError, GatewayNotReadyError
from spendfuse.gateway.state import ACCEPTED, MAX_PUBLISH_DELAY_S, MAX_SEEN, ControlState
from spendfuse.schemas.topics import CONTROL

if TYPE_CHECKING:
    from spendfuse.gateway.config import GatewaySettings

log = logging.getLogger(__name__)
OnRecord = Callable[[str, bytes | None, float], None]
FailMode = Literal["open", "closed", "last_known_good"]
FAIL_MODES: tuple[str, ...] = ("open", "closed", "last_known_good")


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
        fail_mode: FailMode = "last_known_good",
        stale_after_s: float = 30.0,
        max_staleness_s: float = 900.0,
        freshness_interval_s: float = 5.0,
        restart_backoff_s: float = 1.0,
        default_risk_tier: str | None = None,
        max_seen: int = MAX_SEEN,
        max_publish_delay_s: float = MAX_PUBLISH_DELAY_S,
    ) -> None:
        if fail_mode not in FAIL_MODES:
            raise GatewayError(f"fail_mode {fail_mode!r}: use one of {', '.join(FAIL_MODES)}")
        self.topic = topic
        self.verifier = verifier
        self._state_kw: dict[str, Any] = {
            "default_risk_tier": default_risk_tier,
            "max_seen": max_seen,
            "max_publish_delay_s": max_publish_delay_s,
        }
        self.state = ControlState(verifier, **self._state_kw)
        self.on_record = on_record
        self.sweep_interval_s = sweep_interval_s
        self.fail_mode = fail_mode
        self.stale_after_s = stale_after_s
        self.max_staleness_s = max_staleness_s
        self.freshness_interval_s = freshness_interval_s
        self.restart_backoff_s = restart_backoff_s
        self.health: Counter[str] = Counter()
        self._conf: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": f"spendfuse-gateway-{uuid.uuid4().hex}",  # offsets are never committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 100,
            "isolation.level": "read_committed",
            **(config or {}),
        }
        self._loaded = False  # the current consumer loop has read the topic to its end
        self._ever_loaded = False
        self._fresh_at = float("-inf")  # monotonic time the broker last answered
        self._ready_event = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | str | None = None

    @classmethod
    def from_settings(cls, settings: GatewaySettings | None = None, **kw: Any) -> ControlClient:
        from spendfuse.gateway.config import GatewaySettings  # pydantic-settings only if used

        settings = settings or GatewaySettings()
        if not settings.bootstrap_servers:
            raise GatewayError("no Kafka configured: set SPENDFUSE_GATEWAY_BOOTSTRAP_SERVERS")
        verifier = Verifier(settings.key_specs(), settings.signature_algorithm)
        return cls(
            settings.bootstrap_servers,
            verifier,
            topic=settings.topic,
            fail_mode=settings.fail_mode,
            stale_after_s=settings.stale_after_s,
            max_staleness_s=settings.max_staleness_s,
            default_risk_tier=settings.default_risk_tier,
            max_publish_delay_s=settings.max_publish_delay_s,
            config={**settings.kafka_client_config(), **(kw.pop("config", None) or {})},
            **kw,
        )

    # -- health ------------------------------------------------------------------------------
    def state_age_s(self) -> float:
        """Seconds since the broker last confirmed the state (inf before the first load)."""
        return time.monotonic() - self._fresh_at

    @property
    def ready(self) -> bool:
        """Loaded, consumer thread alive, and the broker answered within ``stale_after_s``."""
        return (
            self._loaded
            and self._thread is not None
            and self._thread.is_alive()
            and time.monotonic() - self._fresh_at <= self.stale_after_s
        )

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.state.counts)

    def stats(self) -> dict[str, Any]:
        """What a health page or metrics exporter shows: readiness, state age, restarts, the
        fail-mode answers given, and the record outcomes."""
        return {
            "ready": self.ready,
            "fail_mode": self.fail_mode,
            "state_age_s": self.state_age_s(),
            "commands_in_force": len(self.state),
            "consumer_alive": self._thread is not None and self._thread.is_alive(),
            "last_error": None if self._error is None else str(self._error),
            "health": dict(self.health),
            "records": dict(self.state.counts),
        }

    # -- deciding ----------------------------------------------------------------------------
    def decide(self, request: Mapping[str, Any], now: float | None = None) -> Decision:
        """Allow, deny (with reason) or degrade (with parameters) one request, from memory."""
        now = time.time() if now is None else now
        age = time.monotonic() - self._fresh_at
        if self._loaded and age <= self.stale_after_s:
            return self.state.decide(request, now)
        return self._unavailable(request, now, age)

    def _unavailable(self, request: Mapping[str, Any], now: float, age: float) -> Decision:
        if self.fail_mode == "closed":
            self.health["fail_closed_denies"] += 1
            return DENY_UNAVAILABLE
        if (
            self.fail_mode == "last_known_good"
            and self._ever_loaded
            and age <= (self.max_staleness_s)
        ):
            self.health["last_known_good_decisions"] += 1
            return self.state.decide(request, now)
        self.health["fail_open_allows"] += 1
        return ALLOW_UNAVAILABLE

    # -- running -----------------------------------------------------------------------------
    def start(self, timeout_s: float = 30.0, *, require_ready: bool = False) -> ControlClient:
        """Start following the topic and wait up to ``timeout_s`` for the state in force.

        Not loaded in time: with ``require_ready`` raise :class:`GatewayNotReadyError`, else
        return the client, not ready, applying its fail mode while it keeps trying.
        """
        self._thread = threading.Thread(
            target=self._supervise, name="spendfuse-control", daemon=True
        )
        self._thread.start()
        if not self._ready_event.wait(timeout_s):
            if require_ready:
                self.close()
                raise GatewayNotReadyError(
                    f"control state not loaded from {self.topic} in {timeout_s}s: {self._error}"
                )
            log.warning(
                "control state not loaded from %s in %ss (%s): fail_mode %s applies until it is",
                self.topic,
                timeout_s,
                self._error,
                self.fail_mode,
            )
        return self

    def _supervise(self) -> None:
        """Run the consumer loop; if it raises, count it, wait, and start over on a fresh state."""
        first = True
        while not self._stop.is_set():
            try:
                self._follow(fresh=not first)
            except Exception as exc:
                self._error = exc
                self.health["consumer_restarts"] += 1
                log.exception(
                    "control consumer stopped; restarting (fail_mode %s applies)", self.fail_mode
                )
            finally:
                self._loaded = False
            first = False
            self._stop.wait(self.restart_backoff_s)

    def _follow(self, *, fresh: bool) -> None:
        consumer = Consumer(self._conf)
        try:
            ends = self._end_offsets(consumer)
            if ends is None:
                return  # stopping
            state = ControlState(self.verifier, **self._state_kw) if fresh else self.state
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
            pending = {p for p, end in ends.items() if end > 0}
            next_sweep = next_check = time.monotonic()
            while not self._stop.is_set():
                for msg in consumer.consume(500, 0.05):
                    self._on_message(state, msg, pending, ends)
                now_m = time.monotonic()
                if not pending and not self._loaded:
                    self.state = state
                    self._fresh_at = now_m
                    self._loaded = self._ever_loaded = True
                    self._error = None
                    self._ready_event.set()
                if now_m >= next_sweep:
                    state.expire(time.time())
                    next_sweep = now_m + self.sweep_interval_s
                if self._loaded and now_m >= next_check:
                    self._check_broker(consumer, list(ends))
                    next_check = time.monotonic() + self.freshness_interval_s
        finally:
            consumer.close()

    def _check_broker(self, consumer: Consumer, partitions: list[int]) -> None:
        """Refresh the state's age when the broker answers an uncached offsets query."""
        try:
            for p in partitions:
                consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=2, cached=False
                )
        except KafkaException as exc:
            self._error = f"broker not answering: {exc}"
            self.health["broker_checks_failed"] += 1
            return
        self._fresh_at = time.monotonic()

    def _end_offsets(self, consumer: Consumer) -> dict[int, int] | None:
        """End offset per partition, waiting for the topic and its leaders (a gateway may start
        before spendfuse has created it, or before Kafka is up)."""
        while not self._stop.is_set():
            try:
                meta = consumer.list_topics(self.topic, timeout=5).topics.get(self.topic)
                if meta is not None and meta.error is None and meta.partitions:
                    return {
                        p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=5)[
                            1
                        ]
                        for p in meta.partitions
                    }
                self._error = f"control topic {self.topic} not found; start the spendfuse worker"
            except KafkaException as exc:
                self._error = f"cannot read {self.topic}: {exc}"
            self.health["load_retries"] += 1
            self._stop.wait(0.5)
        return None

    def _on_message(
        self, state: ControlState, msg: Message, pending: set[int], ends: dict[int, int]
    ) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
            else:
                log.warning("control topic error: %s", err)
            return
        now = time.time()
        ts_type, ts_ms = msg.timestamp()
        appended = ts_ms / 1000 if ts_type == TIMESTAMP_LOG_APPEND_TIME else None
        if appended is None:
            state.counts["no_append_time"] += 1
        outcome = state.apply_record(
            msg.key(), msg.value(), signature_header(msg.headers()), now, appended
        )
        if outcome not in ACCEPTED and outcome != "expired":
            log.warning(
                "refused control record %r at offset %s: %s", msg.key(), msg.offset(), outcome
            )
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
