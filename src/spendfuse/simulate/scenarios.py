"""Randomised, seedable fleets and incidents, wider than the hand-made default week.

Why: a detector tuned on one simulated week learns that week. ``random_scenario(seed)`` draws a
different fleet each time -- busy use cases (several events a minute at the peak) and thin ones
(one event every one to five minutes, nearly flat), weekday-heavy and weekend-heavy weeks, new use
cases whose history starts mid-run -- and gives most use cases one incident: sustained volume
spikes (also on thin traffic), gradual ramps, prompt bloat, misrouting, cache collapse, runaway
loops, and on new use cases an incident within the first day of their history.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from spendfuse.simulate.fleet import Fleet, UseCaseProfile
from spendfuse.simulate.generator import expected_events_per_minute
from spendfuse.simulate.incidents import Incident

#: Incident kinds a random scenario draws from (every one is a real incident).
SCENARIO_KINDS: tuple[str, ...] = (
    "volume_spike",
    "gradual_ramp",
    "prompt_bloat",
    "misrouted_model",
    "cache_collapse",
    "runaway_loop",
)
#: Busy traffic: at least this many events a minute where the incident starts; below is thin.
BUSY_EVENTS_PER_MINUTE = 1.0
_H = timedelta(hours=1)


def _minutes(rng: random.Random, lo_h: float, hi_h: float) -> timedelta:
    """A whole number of minutes between ``lo_h`` and ``hi_h`` hours."""
    return timedelta(minutes=round(rng.uniform(lo_h * 60, hi_h * 60)))


@dataclass(frozen=True, slots=True)
class Scenario:
    fleet: Fleet
    incidents: list[Incident]
    start: datetime
    duration: timedelta

    def traffic_class(self, incident: Incident) -> str:
        """``busy`` (>= 1 event a minute in the hour before the change) or ``thin``."""
        profile = next(p for p in self.fleet.use_cases if p.use_case_id == incident.use_case_id)
        t = incident.change_at
        rates = [
            expected_events_per_minute(profile, t - k * timedelta(minutes=5)) for k in range(12)
        ]
        busy = sum(rates) / len(rates) >= BUSY_EVENTS_PER_MINUTE
        return "busy" if busy else "thin"

    def labels(self) -> list[dict]:
        return [i.label() | {"traffic": self.traffic_class(i)} for i in self.incidents]


def _busy(rng: random.Random, name: str, tenant: str) -> UseCaseProfile:
    return UseCaseProfile(
        name,
        tenant,
        rng.choice(["low", "low", "medium", "high"]),
        tasks_per_minute=round(rng.uniform(0.8, 3.0), 2),
        weekend_factor=rng.choice([0.25, 0.4, 0.7, 1.0, 1.6]),
        diurnal_floor=round(rng.uniform(0.08, 0.35), 2),
        steps_per_task=rng.choice([(1, 2), (1, 3), (2, 4)]),
        input_tokens_median=rng.choice([600.0, 1200.0, 2500.0, 4000.0]),
        cache_hit_rate=round(rng.uniform(0.3, 0.6), 2),
    )


def _thin(rng: random.Random, name: str, tenant: str) -> UseCaseProfile:
    """One event every one to five minutes, round the clock (a back-office job, a small team)."""
    profile = UseCaseProfile(
        name,
        tenant,
        rng.choice(["low", "medium", "high", "critical"]),
        weekend_factor=round(rng.uniform(0.85, 1.2), 2),
        diurnal_floor=round(rng.uniform(0.7, 1.0), 2),
        steps_per_task=(1, 1),
        tool_call_prob=round(rng.uniform(0.0, 0.3), 2),
        input_tokens_median=rng.choice([800.0, 1500.0, 3000.0]),
        cache_hit_rate=round(rng.uniform(0.3, 0.6), 2),
    )
    events_at_peak = rng.uniform(0.3, 1.0)
    return replace(profile, tasks_per_minute=round(events_at_peak / profile.events_per_task, 3))


def _incident(rng: random.Random, kind: str, uc: str, start: datetime) -> Incident:
    hours = _minutes(rng, 2.0, 6.0)
    if kind == "volume_spike":
        return Incident("volume_spike", uc, start, hours, round(rng.uniform(2.0, 4.0), 2))
    if kind == "gradual_ramp":
        ramp = _minutes(rng, 1.0, 3.0)
        return Incident(
            "gradual_ramp", uc, start, ramp + hours, round(rng.uniform(2.5, 4.0), 2), ramp=ramp
        )
    if kind == "prompt_bloat":
        return Incident("prompt_bloat", uc, start, hours, round(rng.uniform(2.0, 3.0), 2))
    if kind == "runaway_loop":
        return Incident("runaway_loop", uc, start, _minutes(rng, 0.5, 1.0))
    return Incident(kind, uc, start, hours)  # type: ignore[arg-type]


def random_scenario(
    seed: int,
    days: float = 7.0,
    busy: int = 3,
    thin: int = 3,
    new: int = 2,
    normal: int = 1,
) -> Scenario:
    """A seeded fleet of ``busy + thin + new`` use cases over ``days``, starting on a day from
    Tuesday to Sunday drawn from the seed (so a run of 5 days spans a weekend), with one incident
    per use case except ``normal`` of them. New use cases start mid-run and get their incident
    within their first day. Incidents on established use cases start after two days of history.
    """
    rng = random.Random(seed)
    start = datetime(2026, 11, 2, tzinfo=UTC) + timedelta(days=rng.randrange(1, 7))  # Tue..Sun
    duration = timedelta(days=days)
    tenants = ["acme", "globex", "initech"]
    profiles: list[UseCaseProfile] = []
    for k in range(busy):
        profiles.append(_busy(rng, f"busy-{k}", tenants[k % 3]))
    for k in range(thin):
        profiles.append(_thin(rng, f"thin-{k}", tenants[k % 3]))
    for k in range(new):
        make = _thin if k % 2 else _busy
        born = start + timedelta(days=min(2.5, days / 2)) + _minutes(rng, 0.0, 12.0)
        profiles.append(replace(make(rng, f"new-{k}", tenants[k % 3]), history_start=born))
    kinds = list(SCENARIO_KINDS)
    rng.shuffle(kinds)
    order = list(range(len(profiles)))
    rng.shuffle(order)
    calm = set(order[:normal])
    incidents: list[Incident] = []
    for i, p in enumerate(profiles):
        if i in calm:
            continue
        kind = kinds[i % len(kinds)]
        if p.history_start is not None:
            at = p.history_start + _minutes(rng, 4.0, 20.0)
        else:
            at = start + timedelta(days=2) + _minutes(rng, 0.0, 24 * (days - 3))
        if at + 2 * _H > start + duration:
            continue
        incidents.append(_incident(rng, kind, p.use_case_id, at))
    return Scenario(Fleet(tuple(profiles)), incidents, start, duration)
