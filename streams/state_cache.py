"""Write-behind per-use-case state: one changelog write per key per commit, not per event.

A use case's state (aggregates, baselines, detector state) is tens of kilobytes of plain data.
Writing it to a Faust table on every event would serialize and produce that much per event.
Instead the ingest agent works on an in-memory copy and this cache writes each *changed* key
once when Faust commits offsets: a sensor's ``on_commit_initiated`` hook runs before the
producer is flushed and the offsets are committed, so the changelog always holds the state of
every event whose offset is committed. A crash loses only uncommitted work, which is replayed
(and deduplicated) on restart, as with a plain table.

On rebalance, revoked partitions' keys are written out and dropped from the cache, so the
worker that takes them over recovers them from the changelog.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from itertools import islice
from typing import Any, Protocol

import faust
from faust.sensors import Sensor
from faust.types import TP

from spendfuse.rules.state_size import persisted

log = logging.getLogger(__name__)


class WriteBehindStates:
    """The ``states`` mapping the pipeline reads and writes, backed by a Faust table."""

    def __init__(
        self, table: Any, sink: Any = None, max_cached: int = 5_000, metrics: Any = None
    ) -> None:
        self.table = table
        self.metrics = metrics  # SpendfuseMetrics: the size of each state written
        self.sink = sink  # a CommitProducer; None: Faust's own producer
        self.max_cached = max_cached  # clean keys beyond this are dropped after each flush
        self.partition: int | None = None  # of the record being handled; set by the agent
        self._cache: dict[str, Any] = {}  # in recency order: the least recently written first
        self._partition_of: dict[str, int] = {}
        self._dirty: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        if key in self._cache:
            return self._cache[key]
        value = store_get(self.table.data, self.partition, key)
        return default if value is None else value

    def dirty_keys(self) -> list[str]:
        """Keys changed since the last flush: what the next commit writes."""
        return list(self._dirty)

    def cached(self, key: str) -> Any:
        """The in-memory state of ``key``, or None when it is only in the store."""
        return self._cache.get(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if self.partition is None:
            raise RuntimeError("set the record's partition before writing state")
        self._cache.pop(key, None)
        self._cache[key] = value
        self._partition_of[key] = self.partition
        self._dirty.add(key)

    def _evict(self) -> None:
        """Keep at most ``max_cached`` keys in memory: the least recently written clean ones go
        (they are in the store; a later event reads them back)."""
        excess = len(self._cache) - self.max_cached
        if excess <= 0:
            return
        clean = (k for k in self._cache if k not in self._dirty)  # oldest first
        for key in list(islice(clean, excess)):
            del self._cache[key]
            self._partition_of.pop(key, None)

    def flush(self, keys: Iterable[str] | None = None) -> int:
        """Write dirty keys (all, or those given) to the store and changelog."""
        todo = set(self._dirty) if keys is None else self._dirty.intersection(keys)
        for key in todo:
            value, partition = persisted(self._cache[key]), self._partition_of[key]
            raw = store_put(self.table.data, partition, key, value)
            if raw is not None and self.metrics is not None:
                self.metrics.record_state_bytes(len(raw[1]))
            if self.sink is not None:
                self.sink.changelog(self.table, partition, key, value, raw)
            else:
                self.table.send_changelog(partition, key, value)
            self._dirty.discard(key)
        self._evict()
        return len(todo)

    def drop_partitions(self, partitions: set[int]) -> None:
        """Flush, then forget keys of partitions this worker no longer owns."""
        keys = [k for k, p in self._partition_of.items() if p in partitions]
        self.flush(keys)
        for key in keys:
            self._cache.pop(key, None)
            self._partition_of.pop(key, None)


def store_get(store: Any, partition: int | None, key: Any) -> Any:
    """Read one key from the table's local store, looking in ``partition``'s database only.

    A key lives in the partition of the records that wrote it; Faust's own lookup of a key it
    has not seen (the common case for dedup ids) would search every partition's database.
    Without a partition, or with the memory store, this is the store's plain ``get``.
    """
    if partition is not None and hasattr(store, "_db_for_partition"):
        raw = store._db_for_partition(partition).get(_encode_key(store, key))
        return None if raw is None else store._decode_value(raw)
    return store.get(key)


def _encode_key(store: Any, key: Any) -> bytes:
    """``store._encode_key(key)``: Faust's serializer registry passes ``bytes`` through as they
    are, whatever the codec (``Registry.dumps_key`` skips ``bytes``), so dedup ids, the commonest
    keys, skip the registry's lookups."""
    return key if type(key) is bytes else store._encode_key(key)  # type: ignore[no-any-return]


def _encode_value(store: Any, value: Any) -> bytes:
    """``store._encode_value(value)``, with ``bytes`` passed through as Faust's registry does."""
    return value if type(value) is bytes else store._encode_value(value)  # type: ignore[no-any-return]


def store_put(store: Any, partition: int, key: Any, value: Any) -> tuple[bytes, bytes] | None:
    """Write one key to the table's local store for ``partition``; return the encoded pair.

    Faust's RocksDB store picks the partition database from the *current event*, which a
    commit-time flush does not have, so this writes to that partition's database directly
    (the same two calls ``RocksDB._set`` makes). The memory store needs no partition. The
    encoded key and value are what the changelog carries too (Faust restores a store from
    the changelog's raw bytes), so callers send them as they are rather than encode twice.
    """
    if hasattr(store, "_db_for_partition"):
        raw_key, raw_value = _encode_key(store, key), _encode_value(store, value)
        store._key_index[raw_key] = partition
        store._db_for_partition(partition).put(raw_key, raw_value)
        return raw_key, raw_value
    store[key] = value
    return None


def store_put_bytes(store: Any, partition: int, items: Iterable[bytes], value: bytes) -> None:
    """Write ``value`` under each of the ``bytes`` keys ``items`` to ``partition``'s database in
    one RocksDB write batch, as Faust restores a changelog batch (``apply_changelog_batch``),
    rather than one ``put`` each; the memory store gets one assignment each. The keys stay out
    of Faust's key -> partition index (a small LRU that only spares Faust's own lookups a search
    of every partition): they are read back only through :func:`store_get` with their
    partition, and would push use-case keys out of it.
    Bytes are their own encoding in Faust's registry, so what is stored is what the changelog
    carries."""
    if not hasattr(store, "_db_for_partition"):
        for key in items:
            store[key] = value
        return
    db = store._db_for_partition(partition)
    if getattr(store, "use_rocksdict", False):
        import rocksdict  # Faust's own RocksDB binding, present whenever a RocksDB store is

        batch = rocksdict.WriteBatch(raw_mode=True)
    else:
        import rocksdb  # type: ignore[import-not-found]

        batch = rocksdb.WriteBatch()
    for key in items:
        batch.put(key, value)
    db.write(batch)


class WriteBehind(Protocol):
    def flush(self) -> int: ...

    def drop_partitions(self, partitions: set[int]) -> None: ...


class Outputs(Protocol):
    def flush(self) -> int: ...

    def settle(self) -> int: ...


class DeferredChangelog:
    """The caches' changelog sink at commit: holds each changelog write until every cache has
    written its local store, then hands them all to the producer.

    The dedup ids and the states that counted them are written to the local stores back to
    back (microseconds apart), with no producer call in between, so a ``kill -9`` can hardly
    land between an id and the state that counts its event (which would drop that event's
    spend on restart: the id says "seen", the state never counted it).
    """

    def __init__(self, sink: Any) -> None:
        self.sink = sink
        self._held: list[tuple[Any, int, Any, Any, tuple[bytes, bytes] | None]] = []

    def changelog(
        self,
        table: Any,
        partition: int,
        key: Any,
        value: Any,
        raw: tuple[bytes, bytes] | None = None,
    ) -> None:
        self._held.append((table, partition, key, value, raw))

    def send(self, barrier: Callable[[], Any] | None = None) -> int:
        """Hand the held writes to the producer, one table at a time in the order the tables
        were written (states before ids). ``barrier`` (a producer flush) runs between two
        tables: their changelogs are different topics, whose records a ``kill -9`` can cut at
        different points, so without it an id's changelog record could survive while the state
        that counted its event did not, and a worker restoring from the changelogs (a new
        machine, a lost disk) would drop that event's spend."""
        held, self._held = self._held, []
        last: Any = None
        for table, partition, key, value, raw in held:
            if last is not None and table is not last and barrier is not None:
                barrier()
            last = table
            self.sink.changelog(table, partition, key, value, raw)
        return len(held)


class CommitSequence:
    """What happens at every offset commit, in this order:

    1. the outputs the handled records produced (alerts, commands, dead letters, re-keyed and
       tenant-stage records) are handed to the producer, which is flushed until the broker
       has acknowledged them; any it refused for good is dead-lettered and flushed in turn;
    2. only then the states and dedup ids (``caches``, in order) are written to their local
       stores, then to their changelogs (:class:`DeferredChangelog`, the producer flushed
       between two tables' changelogs and after the last). States go first: each carries the
       input offset of the last record it counted (``Pipeline.run_record``), so a kill between
       the two writes leaves a state ahead of its ids, and the re-read records are recognised
       by the offset instead of counted twice;
    3. Faust commits the offsets.

    A ``kill -9`` before 2 leaves no id or state for the records whose outputs were in flight:
    they are handled again and their outputs re-issued, never lost. No step raises: an
    exception would escape Faust's commit and stop the worker (and recur after every restart),
    so each is logged and counted in ``spendfuse_worker_errors_total{stage="commit"}``.
    """

    def __init__(
        self,
        outputs: Outputs | None,
        caches: Sequence[WriteBehind],
        sink: Any = None,
        metrics: Any = None,
        changelog: DeferredChangelog | None = None,
        before: Callable[[], Any] | None = None,
    ) -> None:
        self.before = before  # adds the outputs the states to be written imply (open rollups)
        self.outputs = outputs
        self.caches = caches
        self.sink = sink
        self.metrics = metrics
        self.changelog = changelog  # the caches' sink, if they write through one

    def _guard(self, step: Callable[[], Any], what: str) -> Any:
        try:
            return step()
        except Exception:
            log.exception("commit step failed (%s); the worker goes on", what)
            if self.metrics is not None:
                self.metrics.record_worker_error("commit")
            return None

    def _flush_sink(self) -> None:
        if self.sink is None:
            return
        failed = self._guard(self.sink.flush, "producer flush") or []
        if failed and self.metrics is not None:
            for _ in failed:
                self.metrics.record_worker_error("changelog")

    def run(self) -> None:
        if self.before is not None:
            self._guard(self.before, "outputs of the states to write")
        if self.outputs is not None:
            self._guard(self.outputs.flush, "outputs")
            for _ in range(3):  # outputs, then their dead letters, then (rarely) theirs
                self._flush_sink()
                if not self._guard(self.outputs.settle, "dead-letter refused outputs"):
                    break
        for cache in self.caches:
            self._guard(cache.flush, type(cache).__name__)
        if self.changelog is not None:
            self._guard(lambda: self.changelog.send(self._flush_sink), "changelog")  # type: ignore[union-attr]
        self._flush_sink()

    def revoke(self, partitions: set[int]) -> None:
        """Before partitions are revoked: outputs first, then ids and states, as at a commit."""
        self.run()
        for cache in self.caches:
            self._guard(lambda c=cache: c.drop_partitions(partitions), "drop partitions")
        if self.changelog is not None:
            self._guard(lambda: self.changelog.send(self._flush_sink), "changelog")  # type: ignore[union-attr]
        self._flush_sink()


async def commit_now(app: faust.App, count_error: Callable[[str], None]) -> None:
    """Commit offsets now (an urgent decision); a failure (a rebalance, the broker away) is
    logged and counted, and the agent goes on: the next timed commit covers the same work."""
    try:
        await app.consumer.commit()
    except Exception:
        log.exception("commit after a decision failed; the next commit will cover it")
        count_error("commit")


class _FlushOnCommit(Sensor):
    def __init__(self, sequence: CommitSequence) -> None:
        super().__init__()
        self.sequence = sequence

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.sequence.run()  # durable before Faust commits the offsets that cover it
        return super().on_commit_initiated(consumer)


def attach_write_behind(
    app: faust.App,
    outputs: Outputs | None,
    caches: Sequence[WriteBehind],
    topic_names: set[str],
    sink: Any = None,
    metrics: Any = None,
    changelog: DeferredChangelog | None = None,
    before: Callable[[], Any] | None = None,
) -> CommitSequence:
    """Run a :class:`CommitSequence` before every offset commit and before a rebalance takes
    partitions away (revoked partitions' keys are then dropped from the caches)."""
    sequence = CommitSequence(outputs, caches, sink, metrics, changelog, before)
    app.sensors.add(_FlushOnCommit(sequence))

    @app.on_partitions_revoked.connect
    async def on_revoked(_app: Any, revoked: set[TP], **_kw: Any) -> None:
        sequence.revoke({tp.partition for tp in revoked if tp.topic in topic_names})

    return sequence
