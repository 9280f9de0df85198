"""Showback and chargeback per period from hourly rollups, with shared costs allocated.

- **Showback** (who used what): one row per period, use case and service, plus the allocated
  shares of shared costs per recipient and each pool's unallocated remainder.
- **Chargeback** (what each cost center is charged): the same costs summed per period, tenant,
  business unit, cost center and service, so each row is an internal invoice line.

Both keep every dollar: the rows of a period add up to its rollups' cost exactly (shared rows
are replaced by their allocated and unallocated parts), and spend nothing could price is
counted in ``unpriced_events`` on its row. Periods are UTC days, calendar months or quarters.
Aggregation runs in Arrow (a month of hourly rollups for 1,000 use cases is millions of rows);
only the per-period groups come back to Python for allocation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc

from spendfuse.finops.allocation import AllocatedRow, AllocationRules, allocate_period
from spendfuse.schemas.rollup import ROLLUP_DIMENSIONS, ROLLUP_MEASURES

Period = Literal["day", "month", "quarter"]
Kind = Literal["showback", "chargeback"]
PERIODS: tuple[Period, ...] = ("day", "month", "quarter")
CHARGEBACK_KEY: tuple[str, ...] = (
    "tenant_id",
    "business_unit",
    "cost_center",
    "component",
    "provider",
    "model_or_service",
    "cost_type",
    "pool",
    "method",
    "driver",
)
"""What a chargeback line is per (period): the use case, environment and risk tier are summed."""
_ADDITIVE = (*ROLLUP_MEASURES, "share")


def period_end(start: datetime, period: Period) -> datetime:
    """The exclusive end of the period that starts at ``start``."""
    if period == "day":
        return datetime.fromordinal(start.toordinal() + 1).replace(tzinfo=UTC)
    months = 1 if period == "month" else 3
    month0 = start.month - 1 + months
    return start.replace(year=start.year + month0 // 12, month=month0 % 12 + 1, day=1)


def _partial(
    table: pa.Table, period: Period, start: datetime | None, end: datetime | None
) -> pa.Table | None:
    """One block of rollups summed per period and key (``None`` when nothing is in range)."""
    if start is not None:
        table = table.filter(pc.greater_equal(table["hour_start"], pa.scalar(start)))
    if end is not None:
        table = table.filter(pc.less(table["hour_start"], pa.scalar(end)))
    if table.num_rows == 0:
        return None
    table = table.append_column("period_start", pc.floor_temporal(table["hour_start"], unit=period))
    return _sum_by_key(table)


_KEYS = ["period_start", *ROLLUP_DIMENSIONS]


def _sum_by_key(table: pa.Table) -> pa.Table:
    # One thread: the same rollups give the same sums and rows, byte for byte, on every run.
    grouped = table.group_by(_KEYS, use_threads=False).aggregate(
        [(m, "sum") for m in ROLLUP_MEASURES]
    )
    return grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])


def aggregate_periods(
    tables: pa.Table | Iterable[pa.Table],
    period: Period,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[datetime, list[dict[str, Any]]]:
    """Rollup rows summed per period and attribution key, optionally within ``[start, end)``.

    ``tables`` may be one table or blocks of one (a file read block by block): each block is
    summed as it comes, so memory holds one block and the per-period sums, not the input.
    """
    blocks = [tables] if isinstance(tables, pa.Table) else tables
    partials = [p for p in (_partial(b, period, start, end) for b in blocks) if p is not None]
    if not partials:
        return {}
    grouped = _sum_by_key(pa.concat_tables(partials)) if len(partials) > 1 else partials[0]
    grouped = grouped.sort_by([(k, "ascending") for k in _KEYS])
    out: dict[datetime, list[dict[str, Any]]] = {}
    for row in grouped.to_pylist():
        out.setdefault(row.pop("period_start"), []).append(row)
    return out


def _direct_row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "cost_type": "direct",
        "pool": None,
        "method": row["allocation_method"],
        "driver": None,
        "share": None,
        "reason": "",
    }


def _shared_row(a: AllocatedRow) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROLLUP_DIMENSIONS)
    row.update(a.dims)
    row.update(dict.fromkeys(ROLLUP_MEASURES, 0))
    row.update(
        cost_usd=a.cost_usd,
        events=a.events if a.cost_type == "unallocated" else 0,
        cost_type=a.cost_type,
        pool=a.pool,
        method=a.method,
        driver=a.driver,
        share=a.share,
        reason=a.reason,
    )
    return row


def showback_rows(
    periods: dict[datetime, list[dict[str, Any]]], period: Period, rules: AllocationRules | None
) -> Iterator[dict[str, Any]]:
    """Per period: the direct rows, then the allocated and unallocated rows of shared costs."""
    for start, rows in periods.items():
        end = period_end(start, period)
        direct, shared = allocate_period(rows, rules)
        for row in direct:
            yield {"period_start": start, "period_end": end, **_direct_row(dict(row))}
        for a in shared:
            yield {"period_start": start, "period_end": end, **_shared_row(a)}


def chargeback_rows(showback: Iterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Showback rows summed per period and :data:`CHARGEBACK_KEY`."""
    lines: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in showback:
        key = (row["period_start"], *(row[k] for k in CHARGEBACK_KEY))
        line = lines.get(key)
        if line is None:
            line = lines[key] = {
                **row,
                "use_case_id": None,
                "environment": None,
                "risk_tier": None,
                "allocation_method": None,
            }
            continue
        for m in _ADDITIVE:
            if row[m] is not None:
                line[m] = (line[m] or 0) + row[m]
        if row["reason"] and row["reason"] not in line["reason"]:
            line["reason"] = (
                f"{line['reason']}; {row['reason']}" if line["reason"] else row["reason"]
            )
    return list(lines.values())


def rows_for(
    periods: dict[datetime, list[dict[str, Any]]],
    period: Period,
    kind: Kind,
    rules: AllocationRules | None = None,
) -> list[dict[str, Any]]:
    """The rows of one report (before the FOCUS mapping) from :func:`aggregate_periods`."""
    rows = showback_rows(periods, period, rules)
    return list(rows) if kind == "showback" else chargeback_rows(rows)


def report_rows(
    tables: pa.Table | Iterable[pa.Table],
    period: Period,
    kind: Kind,
    rules: AllocationRules | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """Aggregate rollups and build one report's rows."""
    return rows_for(aggregate_periods(tables, period, start, end), period, kind, rules)
