"""Several workers in one consumer group, input records with known offsets, and an audit.

The scale-out and fault tests (and ``benchmarks/fault_injection.py``) drive real ``spendfuse
worker`` processes and then account for every input record from what is durable on the broker:

* :class:`Feed` publishes a planned stream (good events, repeats of good events, bad records)
  with an idempotent producer and records the partition and offset each record landed at;
* :func:`latest_states` reads the per-use-case state table's changelog (last value per key);
* :func:`audit` compares the two, plus the dead-letter, alert and control topics: every good
  event counted exactly once, every bad record's offset dead-lettered, no command id twice.

Topics are read up to a snapshot of their end offsets (not until a quiet period), so a reader
returns exactly what the broker holds once the worker's group has committed everything.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from spendfuse.schemas import topics
from spendfuse.schemas.topics import cost_event_key
from tests.support.events import BASE_TIME, make_event
from tests.support.kafka import HISTORY_TOPICS, WorkerProcess, skip_history
from tests.support.waiting import wait_for

SPEND_RULE = "spend_rate_limit"  # the default pack's spend-rate rule (packs/default/spend.yaml)
UNIT_USD = 0.0625  # 1/16: sums of multiples are exact in binary floating point

# ----------------------------------------------------------------------------- workers


class ClusterWorker(WorkerProcess):
    """A worker that can be launched without waiting, paused, and scraped for its metrics."""

    @property
    def web_port(self) -> int:
        return int(self.env["SPENDFUSE_WEB_PORT"])

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def launch(self) -> ClusterWorker:
        """Start the process; :func:`wait_group` (or :meth:`wait_assigned`) waits for it."""
        skip_history(self.bootstrap, self.app_id)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "spendfuse", "worker"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def ready(self) -> bool:
        if not self.alive:
            raise AssertionError(f"worker {self.log_path.name} exited:\n{self.log_tail()}")
        return "[^Worker]: Ready" in self.log_tail(200_000)

    def pause(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def metric_total(self, name: str) -> float | None:
        """The sum of every sample of ``name`` (all its label sets)."""
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = resp.read().decode()
        except OSError:
            return None
        pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$"
        return sum(float(v) for v in re.findall(pattern, body, re.MULTILINE))

    def events_in(self) -> float | None:
        """Input records this process has started handling (since it started)."""
        return self.metric_total("spendfuse_events_in_total")


PY_SPY = str(Path(sys.executable).with_name("py-spy"))


def in_commit_flush(worker: ClusterWorker) -> bool:
    """Whether the (frozen) worker is inside an offset commit's producer calls: handing over
    or waiting for its outputs, or the ids' and states' changelogs (py-spy reads its stack)."""
    assert worker.proc is not None
    dump = subprocess.run(
        [PY_SPY, "dump", "--nonblocking", "--pid", str(worker.proc.pid)],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return "on_commit_initiated" in dump and "commit_producer.py" in dump


def kill_mid_flush(worker: ClusterWorker, tries: int = 300) -> bool:
    """SIGKILL the worker while it is inside a commit's flush (sampled: freeze it at a random
    moment, look at its stack, kill or let it go on); False if never caught in ``tries``."""
    for _ in range(tries):
        time.sleep(random.uniform(0.0, 0.03))
        worker.pause()
        if in_commit_flush(worker):
            worker.kill()
            return True
        worker.resume()
    return False


def group_worker(bootstrap: str, tmp: Path, app_id: str, member: str, **env: str) -> ClusterWorker:
    """A member of consumer group ``app_id`` with its own data directory, log and web port."""
    home = tmp / member
    home.mkdir(parents=True, exist_ok=True)
    return ClusterWorker(
        bootstrap, home, SPENDFUSE_APP_ID=app_id, SPENDFUSE_DATA_DIR=str(home / "data"), **env
    )


def start_group(
    bootstrap: str, tmp: Path, app_id: str, size: int, timeout_s: float = 90.0, **env: str
) -> tuple[list[ClusterWorker], dict[str, set[int]]]:
    """Start ``size`` workers of one group together; return them and who owns which partition."""
    workers = [group_worker(bootstrap, tmp, app_id, f"member-{k}", **env) for k in range(size)]
    for worker in workers:
        worker.launch()
    try:
        wait_for(lambda: all(w.ready() for w in workers), f"{size} workers ready", timeout_s)
        owners = wait_group(bootstrap, app_id, size, timeout_s)
    except BaseException:
        stop_all(workers)
        raise
    return workers, owners


def stop_all(workers: Iterable[WorkerProcess]) -> None:
    """Stop workers together: each gets SIGTERM before any is waited for."""
    workers = list(workers)
    for worker in workers:
        if worker.proc is not None and worker.proc.poll() is None:
            os.killpg(worker.proc.pid, signal.SIGTERM)
    for worker in workers:
        worker.stop()


def input_assignment(bootstrap: str, group: str) -> tuple[str, dict[str, set[int]]] | None:
    """The group's state and, per member id, the input partitions it consumes."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    try:
        desc = admin.describe_consumer_groups([group])[group].result(10)
    except KafkaException:
        return None
    owners = {
        m.member_id: {
            tp.partition for tp in m.assignment.topic_partitions if tp.topic == topics.COST_EVENTS
        }
        for m in desc.members
    }
    return str(desc.state).rsplit(".", 1)[-1], owners


def wait_group(
    bootstrap: str, group: str, members: int, timeout_s: float = 90.0
) -> dict[str, set[int]]:
    """Wait until the group is stable with ``members`` members that share every partition."""
    partitions = set(end_offsets(bootstrap, topics.COST_EVENTS))

    def settled() -> dict[str, set[int]] | None:
        got = input_assignment(bootstrap, group)
        if got is None:
            return None
        state, owners = got
        shared = set().union(*owners.values()) if owners else set()
        if (
            state == "STABLE"
            and len(owners) == members
            and shared == partitions
            and all(owners.values())
        ):
            return owners
        return None

    return wait_for(settled, f"group {group} stable with {members} members", timeout_s)


# ----------------------------------------------------------------------------- offsets


def _client(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"audit-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = _client(bootstrap)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        if meta.error is not None:
            return {}
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.partitions
        }
    finally:
        consumer.close()


def committed(bootstrap: str, group: str, topic: str = topics.COST_EVENTS) -> dict[int, int]:
    """The group's committed offsets (-1001 where it never committed)."""
    consumer = _client(bootstrap, group)
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        tps = [TopicPartition(topic, p) for p in parts]
        return {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=10)}
    finally:
        consumer.close()


def caught_up(bootstrap: str, group: str, ends: dict[int, int] | None = None) -> bool:
    """Whether the group committed the input up to ``ends`` (default: the current ends).

    False while the broker cannot answer (restarting, its group coordinator still loading).
    """
    try:
        ends = end_offsets(bootstrap, topics.COST_EVENTS) if ends is None else ends
        done = committed(bootstrap, group)
    except KafkaException:
        return False
    return all(high <= 0 or done.get(p, -1) >= high for p, high in ends.items())


def wait_caught_up(
    bootstrap: str,
    group: str,
    ends: dict[int, int],
    what: str,
    timeout_s: float,
    *workers: WorkerProcess,
) -> None:
    """:func:`caught_up`, or fail with the end of each worker's log."""
    try:
        wait_for(lambda: caught_up(bootstrap, group, ends), what, timeout_s)
    except AssertionError as exc:
        logs = "\n".join(f"--- {w.log_path}:\n{w.log_tail(3000)}" for w in workers)
        done = committed(bootstrap, group)
        raise AssertionError(f"{exc}; committed {done} of {ends}\n{logs}") from None


def position_group(bootstrap: str, group: str, input_offsets: dict[int, int]) -> None:
    """Make a *new* group start the input at ``input_offsets`` and the other topics at the end.

    Lets a second deployment (another ``app_id``) process exactly the input a first one did.
    """
    offsets = [TopicPartition(topics.COST_EVENTS, p, o) for p, o in input_offsets.items()]
    for topic in HISTORY_TOPICS:
        if topic != topics.COST_EVENTS:
            offsets += [
                TopicPartition(topic, p, o) for p, o in end_offsets(bootstrap, topic).items()
            ]
    consumer = _client(bootstrap, group)
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


def read_topic(
    bootstrap: str, topic: str, since: dict[int, int] | None = None, timeout_s: float = 60.0
) -> list[Record]:
    """Every record of ``topic`` from ``since`` (default: the start) up to its current end."""
    ends = end_offsets(bootstrap, topic)
    starts = {p: (since or {}).get(p, 0) for p in ends}
    todo = {p for p, end in ends.items() if end > starts[p]}
    if not todo:
        return []
    consumer = _client(bootstrap)
    out: list[Record] = []
    try:
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in todo])
        deadline = time.monotonic() + timeout_s
        while todo:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read {topic} to its end {ends} in {timeout_s}s")
            for msg in consumer.consume(5000, 0.5):
                if msg.error():
                    continue
                p, o = msg.partition(), msg.offset()
                if o < ends[p]:
                    out.append(Record(p, o, msg.key(), msg.value()))
                if o >= ends[p] - 1:
                    todo.discard(p)
    finally:
        consumer.close()
    return out


def read_json(
    bootstrap: str, topic: str, since: dict[int, int] | None = None
) -> list[dict[str, Any]]:
    records = []
    for rec in read_topic(bootstrap, topic, since):
        if rec.value is None:
            continue
        try:
            value = orjson.loads(rec.value)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            records.append(value)
    return records


def state_changelog(app_id: str) -> str:
    return f"{app_id}-use-case-state-changelog"


def latest_states(bootstrap: str, app_id: str) -> dict[str, dict[str, Any]]:
    """The last value of every key of the worker's per-use-case state table (its changelog)."""
    latest: dict[str, dict[str, Any]] = {}
    for rec in read_topic(bootstrap, state_changelog(app_id)):
        if rec.key is None:
            continue
        key = rec.key.decode()
        if key.startswith('"'):
            key = orjson.loads(key)
        if rec.value is None:
            latest.pop(key, None)
        else:
            latest[key] = orjson.loads(rec.value)
    return latest


def state_history(bootstrap: str, app_id: str, feed: Feed, use_case: str) -> list[str]:
    """How a use case's counted spend got where it is, for a failure message: each of its state
    changelog records (the input offset it had counted to, its window's spend and count) beside
    the input records of that use case it covered since the one before."""
    inputs = sorted(
        (feed.positions[i], rec.kind, rec.cost_event_id)
        for i, rec in enumerate(feed.sent)
        if rec.use_case_id == use_case and i in feed.positions
    )
    out: list[str] = []
    last = -1
    for rec in read_topic(bootstrap, state_changelog(app_id)):
        key = (rec.key or b"").decode()
        if (orjson.loads(key) if key.startswith('"') else key) != use_case or rec.value is None:
            continue
        state = orjson.loads(rec.value)
        mark = state.get("__offset__") or [None, -1]
        sums = state.get("__aggregates__", {}).get("m", {}).get("s", {})
        covered = [f"{o}:{k[0]}" for (_p, o), k, _id in inputs if last < o <= mark[1]]
        out.append(
            f"changelog {rec.partition}@{rec.offset}: to input {mark}, "
            f"spend {sums.get('spend_usd')} ({sums.get('calls')} calls); "
            f"new inputs {covered}"
        )
        last = max(last, mark[1])
    return out


def window_spend(states: dict[str, dict[str, Any]], use_case: str) -> float:
    """The use case's spend in its current clock minute, the spend-rate rule's window (0 if it
    has no state)."""
    minute = states.get(use_case, {}).get("__aggregates__", {}).get("m", {})
    return float(minute.get("s", {}).get("spend_usd", 0.0))


# ----------------------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
class Planned:
    kind: str  # "good", "duplicate" (a good event sent again) or "bad" (refused by the codec)
    use_case_id: str
    key: bytes
    value: bytes
    cost_event_id: str | None = None
    cost_usd: float = 0.0


def good(event: dict[str, Any]) -> Planned:
    return Planned(
        "good",
        event["use_case_id"],
        cost_event_key(event["use_case_id"]),
        orjson.dumps(event),
        event["cost_event_id"],
        float(event["allocated_cost_usd"]),
    )


def again(original: Planned) -> Planned:
    return Planned(
        "duplicate",
        original.use_case_id,
        original.key,
        original.value,
        original.cost_event_id,
        original.cost_usd,
    )


def bad(use_case: str, n: int) -> Planned:
    value = (
        b'{"schema_version": 1, "cost_event_id": "broken'  # truncated JSON
        if n % 2 == 0
        else orjson.dumps({"schema_version": 1, "cost_event_id": f"no-use-case-{n}"})
    )
    return Planned("bad", use_case, cost_event_key(use_case), value)


def unit_cost(index: int) -> float:
    """Use case ``index`` spends ``(index + 1) / 16`` USD per event: one missing or repeated
    event shows as an exact multiple of that in its sum."""
    return UNIT_USD * (index + 1)


def plan_stream(
    use_cases: Sequence[str],
    goods_per_use_case: int,
    *,
    duplicate_every: int = 10,
    bad_every: int = 50,
    at: datetime = BASE_TIME,
    window_s: float = 50.0,
) -> list[Planned]:
    """Interleaved good events (all in one event-time minute per use case, so the spend-rate
    rule's window holds their whole sum), repeats of earlier good events and bad records."""
    plan: list[Planned] = []
    goods: list[Planned] = []
    step = window_s / max(goods_per_use_case, 1)
    for j in range(goods_per_use_case):
        for i, uc in enumerate(use_cases):
            event = make_event(uc, cost=unit_cost(i), at=at, seconds=round(j * step, 3))
            goods.append(good(event))
            plan.append(goods[-1])
            if duplicate_every and len(goods) % duplicate_every == 0:
                plan.append(again(goods[len(goods) // 2]))  # some earlier, some recent
            if bad_every and len(plan) % bad_every == 0:
                plan.append(bad(uc, len(plan)))
    return plan


def interleave(main: Sequence[Planned], extra: Sequence[Planned]) -> list[Planned]:
    """``extra`` spread evenly through ``main``, each keeping its own order."""
    out: list[Planned] = []
    j = 0
    for i, rec in enumerate(main):
        out.append(rec)
        while j < len(extra) and j * len(main) < (i + 1) * len(extra):
            out.append(extra[j])
            j += 1
    out.extend(extra[j:])
    return out


@dataclass
class Feed:
    """Publishes planned records with an idempotent producer; remembers each one's position."""

    bootstrap: str
    topic: str = topics.COST_EVENTS
    config: dict[str, Any] = field(default_factory=dict)
    sent: list[Planned] = field(default_factory=list)
    positions: dict[int, tuple[int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": self.bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 300_000,  # rides out a broker restart
                **self.config,
            }
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.produced = 0  # handed to the producer (not necessarily delivered yet)
        self.publish_s = 0.0  # time spent in publish(), pacing included

    def _delivered(self, index: int) -> Callable[[Any, Any], None]:
        def on_delivery(err: Any, msg: Any) -> None:
            with self._lock:
                if err is not None:
                    self.errors.append(str(err))
                else:
                    self.positions[index] = (msg.partition(), msg.offset())

        return on_delivery

    def publish(self, records: Iterable[Planned], rate_per_s: float | None = None) -> None:
        """Publish in order; with ``rate_per_s``, paced to that rate."""
        started = time.monotonic()
        base = self.produced
        for rec in records:
            index = len(self.sent)
            self.sent.append(rec)
            while True:
                try:
                    self._producer.produce(
                        self.topic, key=rec.key, value=rec.value, on_delivery=self._delivered(index)
                    )
                    break
                except BufferError:
                    self._producer.poll(0.1)
            self.produced += 1
            self._producer.poll(0)
            if rate_per_s:
                ahead = started + (self.produced - base) / rate_per_s - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)
        self.publish_s += time.monotonic() - started

    def publish_in_background(self, records: Sequence[Planned], rate_per_s: float) -> None:
        self._thread = threading.Thread(
            target=self.publish, args=(list(records), rate_per_s), name="feed", daemon=True
        )
        self._thread.start()

    def join(self, timeout_s: float = 120.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout_s)
            assert not self._thread.is_alive(), "the feed did not finish publishing"

    def poll(self, timeout_s: float) -> None:
        """Serve delivery reports for up to ``timeout_s``."""
        self._producer.poll(timeout_s)

    def flush(self, timeout_s: float = 120.0) -> None:
        left = self._producer.flush(timeout_s)
        assert left == 0, f"{left} records not delivered in {timeout_s}s: {self.errors[:3]}"
        assert not self.errors, self.errors[:5]
        assert len(self.positions) == len(self.sent)

    def ends(self) -> dict[int, int]:
        """Per partition, one past the last offset this feed wrote."""
        out: dict[int, int] = {}
        for p, o in self.positions.values():
            out[p] = max(out.get(p, 0), o + 1)
        return out


# ----------------------------------------------------------------------------- audit


@dataclass
class Audit:
    """Where every input record of a :class:`Feed` ended, judged from the broker."""

    published: int = 0
    good: int = 0
    duplicates: int = 0
    bad: int = 0
    lost: dict[str, int] = field(default_factory=dict)  # use case -> events missing from state
    double_counted: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0  # distinct bad-record offsets found in the DLQ
    dlq_copies: int = 0  # DLQ records for them (> dead_lettered: re-dead-lettered on replay)
    missing_dead_letters: list[tuple[int, int]] = field(default_factory=list)
    commands: Counter[str] = field(default_factory=Counter)  # command id -> copies on the topic
    alerts: Counter[str] = field(default_factory=Counter)  # alert id + status -> copies
    firing_by_use_case: Counter[str] = field(default_factory=Counter)  # distinct firing alerts
    history: dict[str, list[str]] = field(default_factory=dict)  # use case off -> how it got so

    @property
    def events_lost(self) -> int:
        return sum(self.lost.values())

    @property
    def events_double_counted(self) -> int:
        return sum(self.double_counted.values())

    @property
    def duplicated_commands(self) -> dict[str, int]:
        return {cid: n for cid, n in self.commands.items() if n > 1}

    @property
    def duplicated_alerts(self) -> dict[str, int]:
        return {aid: n for aid, n in self.alerts.items() if n > 1}


def expected_spend(sent: Iterable[Planned]) -> dict[str, tuple[float, float]]:
    """Per use case: (sum of its distinct good events' cost, the cost of one of its events)."""
    sums: dict[str, float] = defaultdict(float)
    unit: dict[str, float] = {}
    for rec in sent:
        if rec.kind == "good":
            sums[rec.use_case_id] += rec.cost_usd
            unit[rec.use_case_id] = rec.cost_usd
    return {uc: (total, unit[uc]) for uc, total in sums.items()}


def audit(
    bootstrap: str,
    app_id: str,
    feed: Feed,
    *,
    outputs_since: dict[str, dict[int, int]] | None = None,
    summed: Iterable[str] | None = None,
) -> Audit:
    """Account for every record ``feed`` published, from what the broker holds now.

    Call once the worker's group has committed the whole input (:func:`caught_up`): the state
    changelog and the output topics then hold everything those records led to. The spend sums
    are checked for the use cases in ``summed`` (default: all), which must have all their
    events in one spend-rate window.
    """
    since = outputs_since or {}
    kinds = Counter(rec.kind for rec in feed.sent)
    result = Audit(
        published=len(feed.sent),
        good=kinds["good"],
        duplicates=kinds["duplicate"],
        bad=kinds["bad"],
    )
    states = latest_states(bootstrap, app_id)
    expected = expected_spend(feed.sent)
    for uc in expected if summed is None else summed:
        total, unit = expected[uc]
        off = round((total - window_spend(states, uc)) / unit)
        if off > 0:
            result.lost[uc] = off
        elif off < 0:
            result.double_counted[uc] = -off
        if off:
            result.history[uc] = state_history(bootstrap, app_id, feed, uc)

    bad_at = {feed.positions[i] for i, rec in enumerate(feed.sent) if rec.kind == "bad"}
    found: Counter[tuple[int, int]] = Counter()
    for letter in read_json(bootstrap, topics.COST_EVENTS_DLQ, since.get(topics.COST_EVENTS_DLQ)):
        src = letter.get("source") or {}
        pos = (src.get("partition"), src.get("offset"))
        if src.get("topic") == feed.topic and pos in bad_at:
            found[pos] += 1  # type: ignore[index]
    result.dead_lettered = len(found)
    result.dlq_copies = sum(found.values())
    result.missing_dead_letters = sorted(bad_at - set(found))

    use_cases = {rec.use_case_id for rec in feed.sent}
    for command in read_json(bootstrap, topics.CONTROL, since.get(topics.CONTROL)):
        if command.get("use_case_id") in use_cases:
            result.commands[command["command_id"]] += 1
    firing: dict[str, set[str]] = defaultdict(set)
    for alert in read_json(bootstrap, topics.ALERTS, since.get(topics.ALERTS)):
        if alert.get("use_case_id") in use_cases and alert.get("rule") == SPEND_RULE:
            result.alerts[f"{alert['alert_id']}:{alert['status']}"] += 1
            if alert["status"] == "firing":
                firing[alert["use_case_id"]].add(alert["alert_id"])
    result.firing_by_use_case = Counter({uc: len(ids) for uc, ids in firing.items()})
    return result


def output_marks(bootstrap: str) -> dict[str, dict[int, int]]:
    """Current ends of the output topics: read only what comes after with ``outputs_since``."""
    return {
        t: end_offsets(bootstrap, t)
        for t in (topics.ALERTS, topics.CONTROL, topics.COST_EVENTS_DLQ)
    }
