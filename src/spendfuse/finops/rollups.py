"""Turn priced cost events into hourly rollup records (``schemas.rollup.CostRollup``).

Two forms of the same sums:

- :class:`RollupBook`, what the worker and ``spendfuse replay`` run: each use case's rows live
  in its state as plain data, an hour closes when the use case's event time passes its end plus
  a lateness allowance, a late event re-publishes its hour's row with the full total, and every
  record carries full totals under a stable key (a compacted topic keeps the latest);
- :class:`RollupAccumulator`, for tools that roll up a file of events at once
  (``spendfuse report --events``): sums per (hour, key), drained when the caller says.

Pure: event time decides the hour; nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from spendfuse.schemas.common import AllocationMethod, Component, Environment, RiskTier
from spendfuse.schemas.cost_event import CostEvent, PricingStatus
from spendfuse.schemas.rollup import HOUR_MS, ROLLUP_DIMENSIONS, ROLLUP_MEASURES, CostRollup

_N = len(ROLLUP_MEASURES)
(_COST, _EVENTS, _UNPRICED, _IN, _OUT, _CACHED, _REASONING, _CALLS, _GPU, _RETRIES, _RETRY_COST) = (
    range(_N)
)
Key = tuple[Any, ...]
"""``(hour_start_ms, *ROLLUP_DIMENSIONS)``."""


def _hour_ms(event: CostEvent) -> int:
    return int(event.event_time.timestamp()) // 3600 * HOUR_MS


def event_key(event: CostEvent) -> Key:
    """The rollup key of an event: its UTC hour (ms) and attribution."""
    return (_hour_ms(event), *_dims(event))


_VALUE: dict[Any, str] = {
    member: member.value
    for kind in (Environment, RiskTier, Component, AllocationMethod)
    for member in kind
}
"""Each enum member's value: one dict lookup, where ``.value`` goes through the enum's
descriptor (four per event, and rollups see every event)."""


def _dims(event: CostEvent) -> tuple[Any, ...]:
    """An event's attribution, in ``ROLLUP_DIMENSIONS`` order (``event_key`` without the hour)."""
    value = _VALUE
    return (
        event.tenant_id,
        event.business_unit,
        event.cost_center,
        event.use_case_id,
        value[event.environment],
        value[event.risk_tier],
        value[event.component],
        event.provider,
        event.model_or_service,
        value[event.allocation_method],
    )


class RollupAccumulator:
    """Sums of priced cost events per hour and attribution key, until drained.

    ``add`` costs one dict lookup and a dozen additions per event; memory is one small list per
    open (hour, key). Events must be priced first (``price_event``): an ``unpriced`` event adds
    to ``events`` and ``unpriced_events`` but nothing to ``cost_usd``.
    """

    __slots__ = ("_open",)

    def __init__(self) -> None:
        self._open: dict[Key, list[float]] = {}

    def __len__(self) -> int:
        """Open (hour, key) groups."""
        return len(self._open)

    def add(self, event: CostEvent) -> None:
        key = event_key(event)
        sums = self._open.get(key)
        if sums is None:
            sums = self._open[key] = [0] * _N
        _add(sums, event)

    def add_all(self, events: Iterable[CostEvent]) -> None:
        for event in events:
            self.add(event)

    def open_hours(self) -> list[datetime]:
        """The distinct hours with open sums, oldest first."""
        return [_utc(ms) for ms in sorted({key[0] for key in self._open})]

    def drain(self, closed_before: datetime | None = None) -> list[CostRollup]:
        """Remove and return the records of every hour that ends at or before ``closed_before``
        (all open hours when ``None``), ordered by hour then key."""
        if closed_before is None:
            keys = list(self._open)
        else:
            limit_ms = int(closed_before.timestamp() * 1000) - HOUR_MS
            keys = [k for k in self._open if k[0] <= limit_ms]
        keys.sort(key=_sort_key)
        return [_record(key, self._open.pop(key)) for key in keys]

    def to_state(self) -> list[list[Any]]:
        """Plain data (JSON-able) for a table or a snapshot: ``[[*key, *sums], ...]``."""
        return [[*key, *sums] for key, sums in self._open.items()]

    @classmethod
    def from_state(cls, state: Iterable[list[Any]]) -> RollupAccumulator:
        acc = cls()
        width = 1 + len(ROLLUP_DIMENSIONS)
        for row in state:
            acc._open[tuple(row[:width])] = list(row[width:])
        return acc


def _sort_key(key: Key) -> tuple[Any, ...]:
    return tuple("" if part is None else part for part in key)


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _record(key: Key, sums: list[float]) -> CostRollup:
    fields: dict[str, Any] = dict(zip(ROLLUP_DIMENSIONS, key[1:], strict=True))
    fields.update(zip(ROLLUP_MEASURES, sums, strict=True))
    fields["cost_usd"] = round(fields["cost_usd"], 10)
    fields["retry_cost_usd"] = round(fields["retry_cost_usd"], 10)
    fields["gpu_seconds"] = round(fields["gpu_seconds"], 9)
    return CostRollup(hour_start=_utc(key[0]), **fields)


ROLLUPS_KEY = "__rollups__"
"""In a use case's state: its hourly rollup rows still open or recently closed (plain data)."""
_DIMS = len(ROLLUP_DIMENSIONS)
# a row in state: [hour_ms, revision_ms, closed (0/1), *dimensions, *measures]
_HOUR, _REV, _CLOSED, _D0 = 0, 1, 2, 3
_M0 = _D0 + _DIMS


@dataclass(frozen=True, slots=True)
class RollupPolicy:
    """When the hours of a use case close, and how long a closed hour can still be corrected.

    An hour closes when the use case's event-time watermark (its latest event time) passes the
    hour's end plus ``lateness``; its rows are published then, with their full totals. A late
    event for a closed hour still kept (within ``keep`` of the watermark) updates the row and
    publishes it again under the same key, so a compacted topic keeps the corrected total. An
    event later than that opens a *revision* row (``revision`` = the watermark's hour): its own
    key, published like an hour, so nothing is ever lost or counted twice.
    """

    lateness: timedelta = timedelta(minutes=5)
    keep: timedelta = timedelta(hours=6)

    @property
    def lateness_ms(self) -> int:
        return int(self.lateness.total_seconds() * 1000)

    @property
    def keep_ms(self) -> int:
        return int(self.keep.total_seconds() * 1000)


def _marks(wm: int, late_ms: int, keep_ms: int) -> tuple[int, int]:
    """What :meth:`RollupBook._close` decides depends on: a row (its hour a whole hour) closes
    once ``floor((wm - lateness) / 1h)`` passes it and is forgotten once
    ``ceil((wm - keep - lateness) / 1h)`` does. While neither moves and no row is new, the book
    closed at the last call is still closed (and ``_close`` runs once an hour of event time,
    not at every event)."""
    return (wm - late_ms) // HOUR_MS, -((keep_ms + late_ms - wm) // HOUR_MS)


@lru_cache(maxsize=4096)
def _row_key(hour_ms: int, rev_ms: int, dims: tuple[Any, ...]) -> str:
    """A row's key in the book: the same few per use case and hour, so remembered (dimensions
    are strings or None: equal tuples always make the same key)."""
    return "\x1f".join((str(hour_ms), str(rev_ms), *("" if d is None else str(d) for d in dims)))


def _row_record(row: list[Any]) -> CostRollup:
    record = _record((row[_HOUR], *row[_D0:_M0]), row[_M0:])
    if row[_REV]:
        return record.model_copy(update={"revision": _utc(row[_REV])})
    return record


class RollupBook:
    """Hourly rollups kept in a use case's state as plain data, closed by event time.

    Pure and deterministic: the same records in the same order give the same rows, in the
    worker and in ``spendfuse replay``. Every row published carries the *full* totals of its key
    (:func:`~spendfuse.schemas.rollup.rollup_key`), so publishing one again (after a restart,
    a late event, a periodic flush of open hours) replaces rather than adds.
    """

    def __init__(self, policy: RollupPolicy | None = None) -> None:
        self.policy = policy or RollupPolicy()
        self._policy_cache: tuple[RollupPolicy, int, int] | None = None

    def _policy_ms(self) -> tuple[int, int]:
        """The policy's lateness and keep in ms (worked out once per policy, not per call:
        the worker adds one record's events at a time)."""
        hit = self._policy_cache
        if hit is None or hit[0] is not self.policy:
            hit = self._policy_cache = (self.policy, self.policy.lateness_ms, self.policy.keep_ms)
        return hit[1], hit[2]

    def add(self, events: Iterable[CostEvent], state: dict[str, Any]) -> list[CostRollup]:
        """Count a use case's accepted, priced events; return the rows to publish now: hours
        the watermark closed, and closed rows a late event corrected."""
        book = state.get(ROLLUPS_KEY)
        if book is None:
            book = state[ROLLUPS_KEY] = {"wm": 0, "rows": {}}
        rows: dict[str, list[Any]] = book["rows"]
        late_ms, keep_ms = self._policy_ms()
        corrected: dict[str, list[Any]] = {}
        wm = before = book["wm"]
        created = False
        for event in events:
            seconds = event.event_time.timestamp()
            hour = int(seconds) // 3600 * HOUR_MS  # event_key's hour, from one timestamp()
            dims = _dims(event)
            wm = book["wm"] = max(wm, int(seconds * 1000))
            rev = 0
            if hour + HOUR_MS + late_ms < wm - keep_ms:  # its hour is forgotten
                rev = wm // HOUR_MS * HOUR_MS
            rk = _row_key(hour, rev, dims)
            row = rows.get(rk)
            if row is None:
                row = rows[rk] = [hour, rev, 0, *dims, *([0] * _N)]
                created = True
            _add(row, event, _M0)
            if row[_CLOSED]:
                corrected[rk] = row
        out = [_row_record(row) for row in corrected.values()]
        if created or _marks(before, late_ms, keep_ms) != _marks(wm, late_ms, keep_ms):
            out.extend(self._close(book))
        return out

    def _close(self, book: dict[str, Any]) -> list[CostRollup]:
        """Close the rows the watermark passed; forget closed rows older than ``keep``."""
        wm = book["wm"]
        late_ms, keep_ms = self._policy_ms()
        rows: dict[str, list[Any]] = book["rows"]
        closing: list[list[Any]] = []
        gone: list[str] = []
        for rk, row in rows.items():
            ends = max(row[_HOUR], row[_REV]) + HOUR_MS + late_ms
            if not row[_CLOSED] and ends <= wm:
                row[_CLOSED] = 1
                closing.append(row)
            if row[_CLOSED] and ends < wm - keep_ms:
                gone.append(rk)
        for rk in gone:
            del rows[rk]
        closing.sort(key=lambda r: _sort_key((r[_HOUR], r[_REV], *r[_D0:_M0])))
        return [_row_record(row) for row in closing]

    @staticmethod
    def open_rows(state: dict[str, Any]) -> list[CostRollup]:
        """The rows of hours not closed yet, with their totals so far: published periodically by
        the worker (and at the end of a replay), so reports and dashboards see the current hour.
        A later publication of the same key replaces them."""
        book = state.get(ROLLUPS_KEY) or {}
        return [_row_record(r) for r in (book.get("rows") or {}).values() if not r[_CLOSED]]


def _add(row: list[Any], event: CostEvent, base: int = 0) -> None:
    """Add one event to the measures that start at ``row[base]`` (in ROLLUP_MEASURES order)."""
    cost = event.allocated_cost_usd or 0.0
    row[base + _COST] += cost
    row[base + _EVENTS] += 1
    if event.pricing_status is PricingStatus.UNPRICED:
        row[base + _UNPRICED] += 1
    row[base + _IN] += event.input_tokens
    row[base + _OUT] += event.output_tokens
    row[base + _CACHED] += event.cached_tokens
    row[base + _REASONING] += event.reasoning_tokens
    row[base + _CALLS] += event.api_calls
    row[base + _GPU] += event.gpu_seconds
    if event.is_retry:
        row[base + _RETRIES] += 1
        row[base + _RETRY_COST] += cost
