"""Turn priced cost events into hourly rollup records (``schemas.rollup.CostRollup``).

The worker adds each accepted, priced event and drains the hours it considers closed; a replay
does the same over a file. Pure: event time decides the hour, the caller decides when an hour is
closed (nothing here reads a clock).

Records are additive (see :mod:`spendfuse.schemas.rollup`), which gives the caller two safe ways
to run it:

- drain only closed hours (``drain(closed_before=watermark - lateness)``) and keep the open ones
  as plain data in a table (:meth:`RollupAccumulator.to_state` / :meth:`from_state`); or
- drain everything at each commit (``drain()``), so no state outlives a checkpoint: more,
  smaller records for the same hour, which the report sums the same.

An event that arrives after its hour was drained simply opens that hour again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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
    return (
        _hour_ms(event),
        event.tenant_id,
        event.business_unit,
        event.cost_center,
        event.use_case_id,
        event.environment.value,
        event.risk_tier.value,
        event.component.value,
        event.provider,
        event.model_or_service,
        event.allocation_method.value,
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
        cost = event.allocated_cost_usd or 0.0
        sums[_COST] += cost
        sums[_EVENTS] += 1
        if event.pricing_status is PricingStatus.UNPRICED:
            sums[_UNPRICED] += 1
        sums[_IN] += event.input_tokens
        sums[_OUT] += event.output_tokens
        sums[_CACHED] += event.cached_tokens
        sums[_REASONING] += event.reasoning_tokens
        sums[_CALLS] += event.api_calls
        sums[_GPU] += event.gpu_seconds
        if event.is_retry:
            sums[_RETRIES] += 1
            sums[_RETRY_COST] += cost

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
