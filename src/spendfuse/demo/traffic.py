"""The demo's traffic: the simulator's fleet model, shifted onto the wall clock.

The simulator generates a weekday afternoon (its busiest hours), so the demo looks alive at any
hour; its event times are shifted so that ``history`` of normal traffic ends "now" (published at
once, to give the charts a baseline) and the rest follows in real time. A runaway loop starts on
``research-agent`` (low risk) ``loop_after`` into the live part. Event ids carry a run id, so a
second demo run against the same broker is not taken for duplicates.

Prices are chosen so that normal spend stays well under :data:`DEMO_LIMIT_USD` per minute and
the loop (twenty $0.05 browse calls a minute plus model calls) goes well over it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from spendfuse.simulate import Fleet, Incident, UseCaseProfile, simulate_fleet

DEMO_LIMIT_USD = 0.6
LOOP_USE_CASE = "research-agent"
_VIRTUAL_START = datetime(2026, 11, 18, 13, 0, tzinfo=UTC)  # a Wednesday, early afternoon


def demo_fleet() -> Fleet:
    return Fleet(
        (
            UseCaseProfile("support-bot", "acme", "low", tasks_per_minute=6.0),
            UseCaseProfile(
                LOOP_USE_CASE,
                "acme",
                "low",
                steps_per_task=(3, 6),
                tool_call_prob=0.2,
                tasks_per_minute=1.5,
                input_tokens_median=2500,
                tool="web_browse",
                tool_cost_usd=0.05,
            ),
            UseCaseProfile(
                "doc-summarizer",
                "globex",
                "low",
                tasks_per_minute=3.0,
                input_tokens_median=4000,
                output_tokens_median=400,
                cache_hit_rate=0.5,
            ),
            UseCaseProfile(
                "claims-triage",
                "globex",
                "high",
                model="gpt-4o",
                tasks_per_minute=2.0,
                steps_per_task=(2, 4),
            ),
            UseCaseProfile(
                "kyc-review",
                "initech",
                "critical",
                model="gpt-4o",
                tasks_per_minute=0.8,
                steps_per_task=(2, 3),
            ),
        )
    )


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """When things happen, relative to ``now`` (the end of the backfilled history)."""

    now: datetime
    history: timedelta = timedelta(minutes=60)
    loop_after: timedelta = timedelta(seconds=45)
    loop_for: timedelta = timedelta(minutes=6)
    live_for: timedelta = timedelta(minutes=30)
    run_id: str = "demo"
    seed: int = 7

    @property
    def loop_start(self) -> datetime:
        return self.now + self.loop_after


def demo_events(plan: DemoPlan) -> Iterator[dict[str, Any]]:
    """Cost events in event-time order: ``history`` before ``plan.now``, then the live part."""
    # Shift by whole minutes so simulator minutes line up with the rule's 1-minute windows.
    first = (plan.now - plan.history).replace(second=0, microsecond=0)
    offset = first - _VIRTUAL_START
    loop = Incident("runaway_loop", LOOP_USE_CASE, plan.loop_start - offset, plan.loop_for)
    events = simulate_fleet(
        demo_fleet(), _VIRTUAL_START, plan.now + plan.live_for - first, [loop], seed=plan.seed
    )
    for event in events:
        t = datetime.fromisoformat(event["event_time"]) + offset
        event["event_time"] = t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        event["cost_event_id"] = f"{plan.run_id}-{event['cost_event_id']}"
        yield event
