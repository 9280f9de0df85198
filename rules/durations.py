"""Durations in rule files: ``30s``, ``5m``, ``1h``, ``2d``, ``1w`` and business days ``5bd``.

Business days cannot be a fixed number of seconds (weekends and holidays sit in between), so a
parsed duration keeps its unit and the evaluator counts business days in the tenant's time zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w|bd)\s*$")
DURATION_HINT = "write a whole number and a unit: 30s, 5m, 1h, 2d, 1w, or 5bd for business days"


@dataclass(frozen=True, slots=True)
class Duration:
    amount: int
    unit: str

    @property
    def business_days(self) -> int | None:
        return self.amount if self.unit == "bd" else None

    @property
    def seconds(self) -> int:
        """Length in seconds; a business day counts as a calendar day here (an upper bound)."""
        return self.amount * _UNITS_S.get(self.unit, 86400)

    def __str__(self) -> str:
        return f"{self.amount}{self.unit}"


def parse_duration(value: Any) -> Duration:
    if isinstance(value, Duration):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Duration(value, "s")
    match = _PATTERN.match(str(value)) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"bad duration {value!r}")
    return Duration(int(match.group(1)), match.group(2))


DurationField = Annotated[
    Duration, BeforeValidator(parse_duration), PlainSerializer(str, return_type=str)
]
