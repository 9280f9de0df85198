"""Incidents the simulator can inject, and the labels it writes for them.

Each kind changes how a use case's traffic is generated for the incident's duration:

- ``runaway_loop``: an agent task stuck re-calling a tool and the model, many steps a minute.
- ``prompt_bloat``: a deploy doubles (``factor``) the input tokens per call.
- ``misrouted_model``: low-risk traffic sent to the expensive model.
- ``cache_collapse``: provider cache hits drop to nearly zero.
- ``traffic_growth``: task volume multiplied at flat unit cost (NOT an incident: must stay quiet
  on unit-cost rules).
- ``high_risk_spike``: a spend spike on a high-risk use case (must alert; the guardrail forbids
  automatic action).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

IncidentKind = Literal[
    "runaway_loop",
    "prompt_bloat",
    "misrouted_model",
    "cache_collapse",
    "traffic_growth",
    "high_risk_spike",
]
NOT_INCIDENTS: frozenset[str] = frozenset({"traffic_growth"})


@dataclass(frozen=True, slots=True)
class Incident:
    kind: IncidentKind
    use_case_id: str
    start: datetime
    duration: timedelta
    factor: float = 2.0

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def active(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def label(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "use_case_id": self.use_case_id,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "is_incident": self.kind not in NOT_INCIDENTS,
            "factor": self.factor,
        }


def default_incidents(start: datetime, days: int) -> list[Incident]:
    """One of each kind, spread over the last days of the run (after a week of warm-up if any)."""
    day = timedelta(days=1)
    first = start + day * max(days - 3, 1)
    h = timedelta(hours=1)
    return [
        Incident("runaway_loop", "research-agent", first + 10 * h, timedelta(minutes=40)),
        Incident("prompt_bloat", "support-bot", first + 14 * h, timedelta(hours=6), 2.2),
        Incident("misrouted_model", "doc-summarizer", first + day + 11 * h, timedelta(hours=4)),
        Incident("cache_collapse", "support-bot", first + day + 15 * h, timedelta(hours=4)),
        Incident("traffic_growth", "doc-summarizer", first + 2 * day + 9 * h,
                 timedelta(hours=6), 2.0),
        Incident("high_risk_spike", "claims-triage", first + 2 * day + 13 * h,
                 timedelta(minutes=45), 6.0),
    ]  # fmt: skip
