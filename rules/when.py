"""Calendars in the tenant's time zone: business days, and the ``when`` gate on firing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from spendfuse.rules.model import TenantSpec, When

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def is_business_day(day: date, tenant: TenantSpec) -> bool:
    return _DAYS[day.weekday()] in tenant.business_days and day not in tenant.holidays


def business_days_between(start: date, end: date, tenant: TenantSpec) -> int:
    """Business days in ``[start, end)``."""
    days, count = (end - start).days, 0
    for offset in range(max(days, 0)):
        if is_business_day(start + timedelta(days=offset), tenant):
            count += 1
    return count


def gate_open(when: When | None, at_ms: int, tenant: TenantSpec) -> bool:
    """Whether a rule may *fire* at ``at_ms`` (tenant-local time); clearing is never gated."""
    if when is None:
        return True
    local = datetime.fromtimestamp(at_ms / 1000, tz=UTC).astimezone(ZoneInfo(tenant.time_zone))
    if when.business_days_only and not is_business_day(local.date(), tenant):
        return False
    if when.after is not None and local.time() < when.after:
        return False
    return not (when.before is not None and local.time() >= when.before)
