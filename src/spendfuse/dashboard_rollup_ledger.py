"""The latest hourly rollup row of each key, for the dashboard's budget spend.

The worker publishes each (hour, attribution) rollup with its full totals under a stable key on
a compacted topic (:mod:`spendfuse.schemas.rollup`), and the dashboard reads that topic from the
beginning on every start. Keeping the latest row per key and summing the rows in a budget's
scope and period gives the budget's spend from durable data: a restarted worker shows what it
showed before, not what it handled since it started. Revision rows (events later than their hour
was kept for correction) have keys of their own and add to their event-time hour.

Periods are whole UTC hours: a row counts in the period (the tenant's calendar day, month or
quarter) its hour *starts* in. Whole-hour time zones align exactly; in a half-hour zone (e.g.
Asia/Kolkata) the hour that straddles local midnight counts wholly in the period it starts in,
so up to half an hour of spend shows in the neighbouring period (the row says so).

Only what rollups carry can be summed: spend, tokens (input + output) and requests (events).
Agent steps are not in rollups; a quota on them says so instead of showing a wrong number.

Bounded: rows older than ``keep_ms`` before the newest hour are dropped, and at most
``max_rows`` rows are kept (the row written least recently goes first; ``dropped`` counts them);
the per-hour sums hold one entry per hour with rows, per configured budget and per use case.
Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from spendfuse.rules.budgets import period_bounds
from spendfuse.rules.model import BudgetSpec
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.rollup import HOUR_MS, CostRollup, rollup_key

MEASURE_FIELDS = {"spend_usd": 0, "total_tokens": 1, "calls": 2}
"""The budget measures rollups carry, and where they sit in a row's sums."""

NOT_IN_ROLLUPS = "not in rollups"

_DAY_MS = 24 * HOUR_MS


class LedgerRow(NamedTuple):
    hour_ms: int
    business_unit: str | None
    cost_center: str | None
    use_case_id: str
    environment: str
    risk_tier: str
    sums: tuple[float, float, float]  # spend (USD), tokens (input + output), events


@dataclass(frozen=True, slots=True)
class PeriodSpend:
    """What a budget's scope spent in its current period, summed from the rollups."""

    spent: float
    start: datetime  # the period's bounds (aware, the tenant's zone)
    end: datetime
    newest_hour_ms: int  # the newest hour with a row in scope: the period is the one it is in
    hour_aligned: bool  # False in a half-hour zone: hours count in the period they start in


class _Hours:
    """Per-hour sums of the rows in one scope (a budget's, or a use case's): kept up to date as
    rows are added and replaced, so a poll sums hours, not rows."""

    __slots__ = ("hours",)

    def __init__(self) -> None:
        self.hours: dict[int, list[float]] = {}  # hour ms -> [spend, tokens, events, rows]

    def apply(self, row: LedgerRow, sign: int) -> None:
        entry = self.hours.get(row.hour_ms)
        if entry is None:
            entry = self.hours[row.hour_ms] = [0.0, 0.0, 0.0, 0]
        spend, tokens, events = row.sums
        entry[0] += sign * spend
        entry[1] += sign * tokens
        entry[2] += sign * events
        entry[3] += sign
        if entry[3] <= 0:
            del self.hours[row.hour_ms]

    def total(self, index: int, start_ms: int, end_ms: int) -> float:
        return sum(e[index] for h, e in self.hours.items() if start_ms <= h < end_ms)


class RollupLedger:
    """The latest rollup row per key, per tenant, with per-hour sums per budget scope.

    A budget's scope is summed once from the rows when first asked for (or when its spec
    changed on a rule reload), then kept up to date as rows arrive, so a page poll costs the
    hours of each budget's period rather than every row."""

    def __init__(self, max_rows: int = 200_000, keep_ms: int = 100 * _DAY_MS) -> None:
        self.max_rows = max_rows
        self.keep_ms = keep_ms  # covers a quarter in any time zone behind the newest hour
        self._rows: OrderedDict[bytes, tuple[str, LedgerRow]] = OrderedDict()
        self._by_tenant: dict[str, dict[bytes, LedgerRow]] = {}
        self._scopes: dict[str, dict[str, tuple[BudgetSpec, _Hours]]] = {}  # tenant -> name ->
        self._use_cases: dict[tuple[str, str], _Hours] = {}
        self.newest_ms = 0
        self.dropped = 0
        self._pruned_to = 0  # the cutoff of the last scan for rows too old

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, rows: Iterable[CostRollup]) -> None:
        """Keep each row as its key's latest (a row carries its key's full totals)."""
        for row in rows:
            key = rollup_key(row)
            hour_ms = to_epoch_ms(row.hour_start)
            kept = LedgerRow(
                hour_ms,
                row.business_unit,
                row.cost_center,
                row.use_case_id,
                row.environment,
                row.risk_tier,
                (row.cost_usd, float(row.input_tokens + row.output_tokens), float(row.events)),
            )
            if key in self._rows:
                self._drop(key)
            self._rows[key] = (row.tenant_id, kept)
            self._by_tenant.setdefault(row.tenant_id, {})[key] = kept
            self._apply(row.tenant_id, kept, 1)
            if hour_ms > self.newest_ms:
                self.newest_ms = hour_ms
        if self.newest_ms - self.keep_ms >= self._pruned_to + _DAY_MS:
            self._drop_older_than(self.newest_ms - self.keep_ms)  # a scan a day of event time
        while len(self._rows) > self.max_rows:
            self._drop(next(iter(self._rows)))  # the row written least recently
            self.dropped += 1

    def _apply(self, tenant: str, row: LedgerRow, sign: int) -> None:
        for spec, hours in self._scopes.get(tenant, {}).values():
            if in_scope(spec, row):
                hours.apply(row, sign)
        uc = self._use_cases.get((tenant, row.use_case_id))
        if uc is None:
            if sign < 0:
                return
            uc = self._use_cases[(tenant, row.use_case_id)] = _Hours()
        uc.apply(row, sign)
        if not uc.hours:
            del self._use_cases[(tenant, row.use_case_id)]

    def _drop_older_than(self, cutoff_ms: int) -> None:
        self._pruned_to = cutoff_ms
        for key in [k for k, (_t, r) in self._rows.items() if r.hour_ms < cutoff_ms]:
            self._drop(key)

    def _drop(self, key: bytes) -> None:
        tenant, row = self._rows.pop(key)
        rows = self._by_tenant[tenant]
        del rows[key]
        if not rows:
            del self._by_tenant[tenant]
        self._apply(tenant, row, -1)

    def rows_of(self, tenant_id: str) -> Iterable[LedgerRow]:
        return self._by_tenant.get(tenant_id, {}).values()

    def retain(self, specs: Iterable[BudgetSpec]) -> None:
        """Forget the per-hour sums of budgets no longer configured."""
        keep = {(s.tenant_id, s.name) for s in specs}
        for tenant, scopes in list(self._scopes.items()):
            for name in [n for n in scopes if (tenant, n) not in keep]:
                del scopes[name]
            if not scopes:
                del self._scopes[tenant]

    def _hours_of(self, spec: BudgetSpec) -> _Hours:
        scopes = self._scopes.setdefault(spec.tenant_id, {})
        held = scopes.get(spec.name)
        if held is not None and held[0] == spec:
            return held[1]
        hours = _Hours()
        for row in self.rows_of(spec.tenant_id):
            if in_scope(spec, row):
                hours.apply(row, 1)
        scopes[spec.name] = (spec, hours)
        return hours

    def period_spend(self, spec: BudgetSpec, tz: ZoneInfo | type[UTC] | None) -> PeriodSpend | None:
        """The budget's scope summed over its current period: the tenant's calendar period that
        holds the newest hour with spend in scope (event time). None: no rows in scope yet, or a
        measure rollups do not carry (:data:`MEASURE_FIELDS`)."""
        index = MEASURE_FIELDS.get(spec.measure)
        if index is None:
            return None
        hours = self._hours_of(spec)
        if not hours.hours:
            return None
        newest = max(hours.hours)
        start, end = period_bounds(_utc(newest), spec.period, tz or UTC)  # type: ignore[arg-type]
        start_ms, end_ms = to_epoch_ms(start), to_epoch_ms(end)
        spent = hours.total(index, start_ms, end_ms)
        return PeriodSpend(spent, start, end, newest, start_ms % HOUR_MS == 0)

    def use_case_spend(self, tenant_id: str, use_case_id: str, start_ms: int, end_ms: int) -> float:
        """A use case's spend (USD) in the UTC hours that start in ``[start_ms, end_ms)``."""
        hours = self._use_cases.get((tenant_id, use_case_id))
        return hours.total(0, start_ms, end_ms) if hours is not None else 0.0


_SCOPE = ("use_case_id", "environment", "cost_center", "business_unit", "risk_tier")


def in_scope(spec: BudgetSpec, row: LedgerRow) -> bool:
    """Whether a rollup row (of the budget's tenant) is in the budget's scope."""
    for name in _SCOPE:
        want = getattr(spec, name)
        if want is None:
            continue
        if getattr(row, name) != (want.value if hasattr(want, "value") else want):
            return False
    return True


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
