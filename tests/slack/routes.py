"""A routing callable as rule files would supply it: severity high and up to on-call."""

from __future__ import annotations

from spendfuse.schemas.alert import Alert


def by_severity(alert: Alert) -> str | None:
    return "#ai-oncall" if alert.severity.value in ("high", "critical") else None
