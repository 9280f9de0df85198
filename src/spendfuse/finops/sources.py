"""Where a report's rollups come from: rollup records (a JSONL file or topic records), or cost
events replayed into rollups on the fly. Every source ends as one Arrow table of
:data:`ROLLUP_ARROW_SCHEMA`, which :mod:`spendfuse.finops.report` aggregates.

Rollup records are spendfuse's own output, so they are read in bulk by Arrow's JSON reader and
then checked as a whole (no negative or non-finite measure, hours on the hour); a bad file is
refused with the reason rather than half-read. Cost events are producers' input, so each line is
validated on its own and a bad one is counted and skipped, as the worker dead-letters it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from spendfuse.dedup import MemoryDedupStore
from spendfuse.finops.errors import RollupInputError
from spendfuse.finops.rollups import RollupAccumulator
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.envelope import is_envelope
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.pricebook import PriceBook
from spendfuse.schemas.pricing import price_event
from spendfuse.schemas.rollup import HOUR_MS, ROLLUP_DIMENSIONS, ROLLUP_MEASURES, CostRollup

_FLOAT_MEASURES = frozenset({"cost_usd", "gpu_seconds", "retry_cost_usd"})
ROLLUP_ARROW_SCHEMA = pa.schema(
    [pa.field("hour_start", pa.timestamp("ms", tz="UTC"), nullable=False)]
    + [pa.field(d, pa.string()) for d in ROLLUP_DIMENSIONS]
    + [pa.field(m, pa.float64() if m in _FLOAT_MEASURES else pa.int64()) for m in ROLLUP_MEASURES]
)
_REQUIRED = ("hour_start", "tenant_id", "use_case_id", "environment", "risk_tier", "component")


def empty_rollups() -> pa.Table:
    return ROLLUP_ARROW_SCHEMA.empty_table()


def rollups_from_records(records: Iterable[CostRollup]) -> pa.Table:
    """An Arrow table of validated rollup records."""
    rows = [r.model_dump() for r in records]
    if not rows:
        return empty_rollups()
    return pa.Table.from_pylist(rows, schema=ROLLUP_ARROW_SCHEMA)


_BLOCK_BYTES = 4 << 20
"""Arrow reads JSONL in blocks of this size: memory is bounded by a block, not by the file."""


def iter_rollups_jsonl(stream: BinaryIO, source: str) -> Iterator[pa.Table]:
    """Rollup records from a JSONL stream, a checked Arrow table per block."""
    options = pj.ParseOptions(
        explicit_schema=ROLLUP_ARROW_SCHEMA, unexpected_field_behavior="ignore"
    )
    try:
        reader = pj.open_json(
            stream, read_options=pj.ReadOptions(block_size=_BLOCK_BYTES), parse_options=options
        )
        for batch in reader:
            table = pa.Table.from_batches([batch]).select(ROLLUP_ARROW_SCHEMA.names)
            table = table.cast(ROLLUP_ARROW_SCHEMA)
            _check(table, source)
            yield _fill_defaults(table)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise RollupInputError(f"{source}: not rollup records: {exc}") from None


def rollups_from_jsonl(data: bytes, source: str) -> pa.Table:
    """Parse JSONL rollup records held in memory (e.g. topic values joined by newlines)."""
    if not data.strip():
        return empty_rollups()
    tables = list(iter_rollups_jsonl(io.BytesIO(data), source))
    return pa.concat_tables(tables) if tables else empty_rollups()


def _check(table: pa.Table, source: str) -> None:
    for name in _REQUIRED:
        nulls = table[name].null_count
        if nulls:
            raise RollupInputError(f"{source}: {nulls} records without {name}")
    hours = pc.cast(table["hour_start"], pa.int64())
    if pc.any(pc.not_equal(pc.multiply(pc.divide(hours, HOUR_MS), HOUR_MS), hours)).as_py():
        raise RollupInputError(f"{source}: some hour_start is not the start of an hour")
    for name in ROLLUP_MEASURES:
        column = table[name]
        if column.null_count == len(column):
            continue
        if name in _FLOAT_MEASURES and not pc.all(pc.is_finite(column)).as_py():
            raise RollupInputError(f"{source}: {name} has a NaN or an infinity")
        low = pc.min(column).as_py()
        if low is not None and low < 0:
            raise RollupInputError(f"{source}: {name} has a negative value ({low})")


def _fill_defaults(table: pa.Table) -> pa.Table:
    """Absent measures are 0 and an absent allocation method is ``direct_metered``, as in
    :class:`CostRollup`."""
    for i, name in enumerate(table.schema.names):
        column = table[name]
        if name in ROLLUP_MEASURES and column.null_count:
            zero = 0.0 if name in _FLOAT_MEASURES else 0
            table = table.set_column(i, name, pc.fill_null(column, zero))
        elif name == "allocation_method" and column.null_count:
            table = table.set_column(i, name, pc.fill_null(column, "direct_metered"))
    return table


def read_rollups_file(path: Path) -> Iterator[pa.Table]:
    """Rollup records from a JSONL file, block by block (see :func:`iter_rollups_jsonl`)."""
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise RollupInputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with stream:
        if path.stat().st_size == 0:
            return
        yield from iter_rollups_jsonl(stream, str(path))


@dataclass(slots=True)
class EventsReplay:
    """Rollups computed from a cost events file, and what was refused or repeated on the way."""

    table: pa.Table
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    unpriced: int = 0


def rollups_from_events(lines: Iterable[bytes], book: PriceBook | None) -> EventsReplay:
    """Decode, dedup (as the worker does) and price cost event records, then roll them up.

    Each line is one record: an event or an envelope of events. A bad record or member is
    counted in ``refused`` and skipped.
    """
    acc = RollupAccumulator()
    dedup = MemoryDedupStore()
    out = EventsReplay(empty_rollups())
    for raw in lines:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            out.refused += 1
            continue
        members = obj.get("events") if is_envelope(obj) else [obj]
        for member in members if isinstance(members, list) else [None]:
            try:
                event = parse_cost_event_obj(member)
            except EventRejectedError:
                out.refused += 1
                continue
            ts_ms = to_epoch_ms(event.event_time)
            if dedup.seen(event.cost_event_id, ts_ms):
                out.duplicates += 1
                continue
            dedup.remember(event.cost_event_id, ts_ms)
            price_event(event, book)
            out.accepted += 1
            out.unpriced += event.pricing_status == "unpriced"
            acc.add(event)
    out.table = rollups_from_records(acc.drain())
    return out
