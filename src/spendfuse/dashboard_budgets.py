"""The dashboard's budget and showback views: the YAML budgets as configured, and spend per cost
center, business unit and use case from the worker's hourly rollups.

Budgets come from the running rule set (the default pack with ``SPENDFUSE_RULES_DIR`` merged on
top, reloaded live), so the page shows exactly the budgets and quotas the rules enforce: name,
scope, period, limit, spent so far, percent and the forecast at period end. Spent is counted
from the accepted events this worker handled since it started, per budget, in the budget's
period (calendar day, month or quarter in the tenant's time zone, by event time); the budget
rules themselves keep their own, durable state.

Showback keeps the latest rollup row of each rollup key (each carries its key's full totals)
for the current and previous UTC month, and sums them per dimension for the current day and
month. Pure: no Kafka, no clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spendfuse.rules.budgets import period_bounds, project_exhaustion
from spendfuse.rules.model import BudgetSpec
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.common import format_rfc3339, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.rollup import CostRollup, rollup_key

_SCOPE_FIELDS = ("use_case_id", "environment", "cost_center", "business_unit", "risk_tier")


def measure_of(spec: BudgetSpec, event: CostEvent) -> float:
    """What one event counts towards a budget, in its measure's unit."""
    if spec.measure == "spend_usd":
        return event.cost_usd
    if spec.measure == "total_tokens":
        return float(event.total_tokens)
    if spec.measure == "calls":
        return 1.0
    return 1.0 if event.step_number is not None else 0.0


def matches(spec: BudgetSpec, event: CostEvent) -> bool:
    if spec.tenant_id != event.tenant_id:
        return False
    for name in _SCOPE_FIELDS:
        want = getattr(spec, name)
        if want is None:
            continue
        got = getattr(event, name)
        if (got.value if hasattr(got, "value") else got) != (
            want.value if hasattr(want, "value") else want
        ):
            return False
    return True


def scope_label(spec: BudgetSpec) -> str:
    parts = [f"tenant {spec.tenant_id}"]
    for name in _SCOPE_FIELDS:
        value = getattr(spec, name)
        if value is not None:
            label = name.removesuffix("_id").replace("_", " ")
            parts.append(f"{label} {value.value if hasattr(value, 'value') else value}")
    return " · ".join(parts)


@dataclass(slots=True)
class _Tracker:
    spec: BudgetSpec
    kind: str
    start_ms: int = 0
    end_ms: int = 0
    start: datetime | None = None
    end: datetime | None = None
    spent: float = 0.0
    last: datetime | None = None


class BudgetBoard:
    """Spend per configured budget and quota in its current period."""

    def __init__(self, rules: Callable[[], RuleSet | None] = lambda: None) -> None:
        self.rules = rules  # the running rule set, read on every event (reloads apply)
        self._trackers: dict[tuple[str, str], _Tracker] = {}
        self._ruleset: RuleSet | None = None
        self._specs: list[tuple[str, BudgetSpec]] = []

    def _current(self) -> list[tuple[str, BudgetSpec]]:
        rs = self.rules()
        if rs is not self._ruleset:
            self._ruleset = rs
            self._specs = []
            if rs is not None:
                self._specs = [("budget", b) for b in rs.budgets.values()]
                self._specs += [("quota", q) for q in rs.quotas.values()]
            wanted = {(k, s.name): s for k, s in self._specs}
            self._trackers = {
                key: t for key, t in self._trackers.items() if wanted.get(key) == t.spec
            }
        return self._specs

    def add_event(self, event: CostEvent) -> None:
        for kind, spec in self._current():
            if not matches(spec, event):
                continue
            tracker = self._trackers.get((kind, spec.name))
            if tracker is None:
                tracker = self._trackers[(kind, spec.name)] = _Tracker(spec, kind)
            at_ms = to_epoch_ms(event.event_time)
            if at_ms >= tracker.end_ms:  # a new period (or the first event)
                self._open(tracker, event.event_time)
            elif at_ms < tracker.start_ms:
                continue  # an earlier period's late event
            tracker.spent += measure_of(spec, event)
            if tracker.last is None or event.event_time > tracker.last:
                tracker.last = event.event_time

    def _open(self, tracker: _Tracker, at: datetime) -> None:
        rs = self._ruleset
        tz = rs.tz(tracker.spec.tenant_id) if rs is not None else UTC
        start, end = period_bounds(at, tracker.spec.period, tz)  # type: ignore[arg-type]
        tracker.start, tracker.end = start, end
        tracker.start_ms, tracker.end_ms = to_epoch_ms(start), to_epoch_ms(end)
        tracker.spent = 0.0
        tracker.last = None

    def view(self) -> list[dict[str, Any]]:
        """One row per configured budget and quota, as configured, with spend so far."""
        rows = []
        for kind, spec in self._current():
            tracker = self._trackers.get((kind, spec.name))
            limit = spec.cap
            spent = tracker.spent if tracker else 0.0
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
                "spent": round(spent, 6),
                "percent": round(100 * spent / limit, 2) if limit > 0 else None,
                "period_start": None,
                "period_end": None,
                "forecast": None,
                "exhausted_at": None,
                "status": "no events yet" if tracker is None else "ok",
            }
            if tracker is not None and tracker.start and tracker.end and tracker.last:
                row["period_start"] = format_rfc3339(tracker.start.astimezone(UTC))
                row["period_end"] = format_rfc3339(tracker.end.astimezone(UTC))
                elapsed = (tracker.last - tracker.start).total_seconds()
                length = (tracker.end - tracker.start).total_seconds()
                if elapsed > 0:
                    row["forecast"] = round(spent / elapsed * length, 6)
                at = project_exhaustion(spent, limit, tracker.start, tracker.last)
                if spent >= limit:
                    row["status"] = "exhausted"
                elif at is not None and at < tracker.end:
                    row["status"] = "projected"
                if at is not None and at < tracker.end:
                    row["exhausted_at"] = format_rfc3339(at.astimezone(UTC))
            rows.append(row)
        rows.sort(key=lambda r: (-(r["percent"] or 0.0), r["name"]))
        return rows

    def for_use_case(self, tenant_id: str, use_case_id: str, period: str) -> dict[str, Any] | None:
        """The spend budget set on exactly this use case for ``period``, if one is configured."""
        for kind, spec in self._current():
            if (
                kind == "budget"
                and spec.measure == "spend_usd"
                and spec.period == period
                and spec.tenant_id == tenant_id
                and spec.use_case_id == use_case_id
                and not any(getattr(spec, f) for f in _SCOPE_FIELDS[1:])
            ):
                tracker = self._trackers.get((kind, spec.name))
                return {
                    "name": spec.name,
                    "limit_usd": spec.cap,
                    "spent_usd": tracker.spent if tracker else 0.0,
                    "period_end": tracker.end if tracker else None,
                }
        return None


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
