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
- ``volume_spike``: task volume multiplied by ``factor`` and held (a sustained spike, on busy or
  thin traffic alike).
- ``gradual_ramp``: task volume rising linearly to ``factor`` over ``ramp``, then held.

Any kind can ramp: with ``ramp`` set, its multiplier grows linearly from 1 to ``factor`` over that
time. A label's ``change_at`` is when the change first reaches 2x (or ``factor`` if smaller): the
instant a detector can fairly be timed from.
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
    "volume_spike",
    "gradual_ramp",
]
NOT_INCIDENTS: frozenset[str] = frozenset({"traffic_growth"})
#: Kinds that multiply a use case's task volume (the rest change what each call costs).
VOLUME_KINDS: tuple[str, ...] = (
    "traffic_growth",
    "high_risk_spike",
    "volume_spike",
    "gradual_ramp",
)


@dataclass(frozen=True, slots=True)
class Incident:
    kind: IncidentKind
    use_case_id: str
    start: datetime
    duration: timedelta
    factor: float = 2.0
    ramp: timedelta = timedelta(0)

    @property
    def end(self) -> datetime:
        return self.start + self.duration

    def active(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def multiplier(self, t: datetime) -> float:
        """The incident's factor at ``t``: ``factor`` at once, or linearly reached over ``ramp``."""
        if not self.ramp:
            return self.factor
        done = min(max((t - self.start) / self.ramp, 0.0), 1.0)
        return 1.0 + (self.factor - 1.0) * done

    @property
    def change_at(self) -> datetime:
        """When the change first reaches 2x (``factor`` if that is smaller)."""
        if not self.ramp or self.factor <= 1.0:
            return self.start
        share = min((min(self.factor, 2.0) - 1.0) / (self.factor - 1.0), 1.0)
        return self.start + self.ramp * share

    def label(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "use_case_id": self.use_case_id,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "is_incident": self.kind not in NOT_INCIDENTS,
            "factor": self.factor,
            "change_at": self.change_at.isoformat().replace("+00:00", "Z"),
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
        Incident(
            "traffic_growth", "doc-summarizer", first + 2 * day + 9 * h, timedelta(hours=6), 2.0
        ),
        Incident(
            "high_risk_spike", "claims-triage", first + 2 * day + 13 * h, timedelta(minutes=45), 6.0
        ),
    ]
