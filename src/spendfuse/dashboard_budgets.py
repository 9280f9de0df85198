"""The dashboard's budget and showback views: the YAML budgets as configured, and spend per cost
center, business unit and use case from the worker's hourly rollups.

Budgets come from the running rule set (the default pack with ``SPENDFUSE_RULES_DIR`` merged on
top, reloaded live), so the page shows exactly the budgets and quotas the rules enforce: name,
scope, period, limit, spent so far, percent and the forecast at period end. Spent is summed from
the hourly rollups the worker publishes (:mod:`spendfuse.dashboard_rollup_ledger`: the latest
row per key, in the budget's scope and period, the tenant's calendar day, month or quarter by
event time), so it is durable: a restarted worker shows the same spent as before.

Showback keeps the latest rollup row of each rollup key (each carries its key's full totals)
for the current and previous UTC month, and sums them per dimension for the current day and
month. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from spendfuse.dashboard_rollup_ledger import (
    MEASURE_FIELDS,
    NOT_IN_ROLLUPS,
    PeriodSpend,
    RollupLedger,
)
from spendfuse.rules.budgets import project_exhaustion
from spendfuse.rules.model import BudgetSpec
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.common import format_rfc3339, to_epoch_ms
from spendfuse.schemas.rollup import HOUR_MS, CostRollup, rollup_key

_SCOPE_FIELDS = ("use_case_id", "environment", "cost_center", "business_unit", "risk_tier")


def scope_label(spec: BudgetSpec) -> str:
    parts = [f"tenant {spec.tenant_id}"]
    for name in _SCOPE_FIELDS:
        value = getattr(spec, name)
        if value is not None:
            label = name.removesuffix("_id").replace("_", " ")
            parts.append(f"{label} {value.value if hasattr(value, 'value') else value}")
    return " · ".join(parts)


class BudgetBoard:
    """Spend per configured budget and quota in its current period, from the rollup ledger."""

    def __init__(
        self,
        rules: Callable[[], RuleSet | None] = lambda: None,
        ledger: RollupLedger | None = None,
    ) -> None:
        self.rules = rules  # the running rule set, read on every view (reloads apply)
        self.ledger = ledger if ledger is not None else RollupLedger()

    def _current(self) -> tuple[RuleSet | None, list[tuple[str, BudgetSpec]]]:
        rs = self.rules()
        if rs is None:
            return None, []
        specs = [("budget", b) for b in rs.budgets.values()]
        specs += [("quota", q) for q in rs.quotas.values()]
        return rs, specs

    def _spend(self, rs: RuleSet | None, spec: BudgetSpec) -> PeriodSpend | None:
        return self.ledger.period_spend(spec, rs.tz(spec.tenant_id) if rs is not None else UTC)

    def view(self, as_of_ms: int | None = None) -> list[dict[str, Any]]:
        """One row per configured budget and quota, as configured, with spend so far.

        ``as_of_ms`` is the newest event time the dashboard saw: within the newest hour in a
        budget's scope it marks how far that hour has run (for the forecast); otherwise the hour
        counts as run to its end."""
        rows = []
        rs, specs = self._current()
        self.ledger.retain(spec for _kind, spec in specs)
        for kind, spec in specs:
            limit = spec.cap
            row: dict[str, Any] = {
                "name": spec.name,
                "kind": kind,
                "owner": spec.owner,
                "scope": scope_label(spec),
                "tenant_id": spec.tenant_id,
                "use_case_id": spec.use_case_id,
                "period": spec.period,
                "measure": spec.measure,
                "limit": limit,
                "enforcement": spec.enforcement,
                "spent": 0.0,
                "percent": 0.0,
                "period_start": None,
                "period_end": None,
                "period_note": None,
                "forecast": None,
                "exhausted_at": None,
                "status": "no spend yet",
            }
            if spec.measure not in MEASURE_FIELDS:
                row.update(spent=None, percent=None, status=NOT_IN_ROLLUPS)
                rows.append(row)
                continue
            got = self._spend(rs, spec)
            if got is None:
                rows.append(row)
                continue
            spent = got.spent
            row.update(
                spent=round(spent, 6),
                percent=round(100 * spent / limit, 2) if limit > 0 else None,
                status="ok",
                period_start=format_rfc3339(got.start.astimezone(UTC)),
                period_end=format_rfc3339(got.end.astimezone(UTC)),
            )
            if not got.hour_aligned:
                row["period_note"] = (
                    "half-hour zone: each UTC hour counts in the period it starts in"
                )
            last = _last(got, as_of_ms)
            elapsed = (last - got.start).total_seconds()
            length = (got.end - got.start).total_seconds()
            if elapsed > 0:
                row["forecast"] = round(spent / elapsed * length, 6)
            at = project_exhaustion(spent, limit, got.start, last)
            if spent >= limit:
                row["status"] = "exhausted"
            elif at is not None and at < got.end:
                row["status"] = "projected"
            if at is not None and at < got.end:
                row["exhausted_at"] = format_rfc3339(at.astimezone(UTC))
            rows.append(row)
        rows.sort(key=lambda r: (-(r["percent"] or 0.0), r["name"]))
        return rows

    def for_use_case(self, tenant_id: str, use_case_id: str, period: str) -> dict[str, Any] | None:
        """The spend budget set on exactly this use case for ``period``, if one is configured."""
        rs, specs = self._current()
        for kind, spec in specs:
            if (
                kind == "budget"
                and spec.measure == "spend_usd"
                and spec.period == period
                and spec.tenant_id == tenant_id
                and spec.use_case_id == use_case_id
                and not any(getattr(spec, f) for f in _SCOPE_FIELDS[1:])
            ):
                got = self._spend(rs, spec)
                return {
                    "name": spec.name,
                    "limit_usd": spec.cap,
                    "spent_usd": got.spent if got else 0.0,
                    "period_end": got.end if got else None,
                }
        return None


def _last(got: PeriodSpend, as_of_ms: int | None) -> datetime:
    """How far the period has run: the newest hour in scope, up to the newest event time seen
    if that falls within it, else to its end (capped at the period's end)."""
    hour_end = got.newest_hour_ms + HOUR_MS
    ms = hour_end
    if as_of_ms is not None and got.newest_hour_ms <= as_of_ms < hour_end:
        ms = as_of_ms
    last = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return min(last, got.end.astimezone(UTC))


SHOWBACK_DIMENSIONS = ("cost_center", "business_unit", "use_case_id")


class Showback:
    """The latest rollup row per key, summed per dimension for the current day and month."""

    def __init__(self, max_rows: int = 50_000) -> None:
        self.max_rows = max_rows
        # rollup key -> (hour ms, cost center, business unit, use case, cost)
        self._rows: OrderedDict[bytes, tuple[int, str, str, str, float]] = OrderedDict()
        self.newest_ms = 0

    def add(self, rows: Iterable[CostRollup]) -> None:
        for row in rows:
            hour_ms = to_epoch_ms(row.hour_start)
            key = rollup_key(row)
            self._rows.pop(key, None)
            self._rows[key] = (
                hour_ms,
                row.cost_center or "(none)",
                row.business_unit or "(none)",
                row.use_case_id,
                row.cost_usd,
            )
            self.newest_ms = max(self.newest_ms, hour_ms)
        while len(self._rows) > self.max_rows:
            self._rows.popitem(last=False)

    def view(self, top: int = 20) -> dict[str, Any]:
        if not self._rows:
            return {"day": None, "month": None, "source": "hourly rollups", "dimensions": {}}
        newest = datetime.fromtimestamp(self.newest_ms / 1000, tz=UTC)
        day_start = to_epoch_ms(newest.replace(hour=0))
        month_start = to_epoch_ms(newest.replace(day=1, hour=0))
        sums: dict[str, dict[str, list[float]]] = {d: {} for d in SHOWBACK_DIMENSIONS}
        stale = []
        for key, (hour_ms, cc, bu, uc, cost) in self._rows.items():
            if hour_ms < month_start:
                stale.append(key)
                continue
            for dim, value in zip(SHOWBACK_DIMENSIONS, (cc, bu, uc), strict=True):
                entry = sums[dim].setdefault(value, [0.0, 0.0])
                entry[1] += cost
                if hour_ms >= day_start:
                    entry[0] += cost
        for key in stale:  # a month behind the newest hour: no longer shown
            del self._rows[key]
        return {
            "day": newest.strftime("%Y-%m-%d"),
            "month": newest.strftime("%Y-%m"),
            "source": "hourly rollups (UTC, event time)",
            "dimensions": {
                dim: [
                    {"name": name, "day_usd": round(d, 6), "month_usd": round(m, 6)}
                    for name, (d, m) in sorted(values.items(), key=lambda kv: (-kv[1][1], kv[0]))[
                        :top
                    ]
                ]
                for dim, values in sums.items()
            },
        }
