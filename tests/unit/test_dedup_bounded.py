"""Dedup ids are bounded by time: day buckets dropped whole, future ids clamped to tomorrow.

The worker's store is driven on a real Faust table (RocksDB and memory stores, no broker:
changelog records are counted); benchmarks/dedup_memory.py measures its bytes per event.
"""

from __future__ import annotations

from pathlib import Path

import faust
import pytest

from spendfuse.dedup import DAY_MS, MemoryDedupStore
from spendfuse.streams.dedup_table import FaustDedupStore

T0 = 1_795_000_000_000  # 2026-11-18
FAR_FUTURE = 4_000_000_000_000  # 2096


class _Sink:
    def __init__(self) -> None:
        self.keys: list[bytes] = []

    def changelog(self, _table: object, _partition: int, key: bytes, *_rest: object) -> None:
        self.keys.append(key)


def _keys(store: FaustDedupStore) -> list[bytes]:
    data = store.table.data
    if hasattr(data, "_db_for_partition"):
        return [k for p in (0, 1) for k in data._db_for_partition(p).keys()]  # noqa: SIM118 (an Rdict)
    return list(data.data)


@pytest.mark.parametrize("url", ["rocksdb://", "memory://"])
def test_the_worker_keeps_a_few_days_of_ids_whatever_their_dates(url: str, tmp_path: Path) -> None:
    app = faust.App(f"dedup-{url[:3]}", store=url, datadir=str(tmp_path), broker="kafka://x:1")
    now = [T0]
    sink = _Sink()
    store = FaustDedupStore(app, sink=sink, clock_ms=lambda: now[0])
    store.partition = 1
    store.remember("future", FAR_FUTURE)
    store.remember("today", now[0])
    store.flush()
    assert store.seen("future", FAR_FUTURE) and store.seen("today", now[0] + 1000)
    for day in range(1, 7):
        now[0] = T0 + day * DAY_MS
        for i in range(100):
            store.partition = i % 2
            store.remember(f"d{day}-{i}", now[0])
        store.flush()
        assert store.seen(f"d{day}-7", now[0] + 3600_000)  # a repeat an hour later
        if day >= 2:  # tomorrow's bucket (where the 2096 id went) is past retention
            assert not store.seen("future", FAR_FUTURE)
    kept = _keys(store)
    assert len(kept) <= 3 * 200  # today and the two days before: 3 x 100 per partition pair
    assert {k[:4] for k in kept} <= {(T0 // DAY_MS + d).to_bytes(4, "big") for d in (4, 5, 6)}
    assert len(sink.keys) == 602  # every id also went to the changelog once


def test_replay_dedup_is_not_reset_by_an_id_dated_in_2096() -> None:
    dedup = MemoryDedupStore(clock_ms=lambda: T0 + 30 * DAY_MS)
    dedup.remember("live", T0)
    dedup.remember("future", FAR_FUTURE)
    assert dedup.seen("live", T0 + 60_000)  # the live bucket survived
    assert dedup.seen("future", FAR_FUTURE)
    for day in range(1, 20):  # replayed event time moves on: old buckets go
        dedup.remember(f"x{day}", T0 + day * DAY_MS)
        assert dedup.seen(f"x{day}", T0 + day * DAY_MS + 60_000)
    assert len(dedup._buckets) <= 4  # the three newest days and the clamped future one
    assert dedup.seen("future", FAR_FUTURE)


@pytest.mark.parametrize("url", ["rocksdb://", "memory://"])
def test_event_time_decides_an_old_replayed_stream_still_dedups(url: str, tmp_path: Path) -> None:
    app = faust.App(f"old-{url[:3]}", store=url, datadir=str(tmp_path), broker="kafka://x:1")
    store = FaustDedupStore(app, sink=_Sink(), clock_ms=lambda: T0 + 30 * DAY_MS)
    store.partition = 0
    for hour in range(48):  # two days of events from a month before the clock
        store.remember(f"h{hour}", T0 + hour * 3600_000)
    store.flush()
    assert all(store.seen(f"h{hour}", T0 + hour * 3600_000 + 60_000) for hour in range(48))
