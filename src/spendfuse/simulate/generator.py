"""Generate a realistic, labelled cost-event stream for a fleet, minute by minute.

Deterministic for a seed. Events come out in event-time order as plain dicts in the cost-event
wire shape (model calls carry tokens and no cost, so the worker prices them from the catalog;
tool calls carry their metered cost).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from spendfuse.simulate.fleet import Fleet, UseCaseProfile
from spendfuse.simulate.incidents import VOLUME_KINDS, Incident

_MINUTE = timedelta(minutes=1)


def traffic_shape(t: datetime, weekend_factor: float, floor: float = 0.12) -> float:
    """Relative load at ``t``: a diurnal curve (peak mid-afternoon UTC) over a night-time
    ``floor``, times ``weekend_factor`` on Saturdays and Sundays (a dip, or above 1 a
    weekend-heavy use case)."""
    hour = t.hour + t.minute / 60
    day = max(0.0, math.sin(math.pi * (hour - 7) / 15)) ** 1.5 if 7 <= hour <= 22 else 0.0
    shape = floor + (1.0 - floor) * day
    return shape * (weekend_factor if t.weekday() >= 5 else 1.0)


def expected_events_per_minute(profile: UseCaseProfile, t: datetime) -> float:
    """Normal event rate of ``profile`` at ``t`` (no incident): what "thin traffic" is judged by."""
    if profile.history_start is not None and t < profile.history_start:
        return 0.0
    shape = traffic_shape(t, profile.weekend_factor, profile.diurnal_floor)
    return profile.tasks_per_minute * shape * profile.events_per_task


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _UseCaseStream:
    """Per-use-case generator state (trace counter, the runaway loop's trace)."""

    def __init__(
        self, profile: UseCaseProfile, incidents: list[Incident], rng: np.random.Generator
    ) -> None:
        self.p = profile
        self.incidents = [i for i in incidents if i.use_case_id == profile.use_case_id]
        self.rng = rng
        self.seq = 0
        self.loop_trace: str | None = None
        self.loop_step = 0

    def _active(self, t: datetime, kind: str) -> Incident | None:
        return next((i for i in self.incidents if i.kind == kind and i.active(t)), None)

    def _event(self, t: datetime, trace: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        p = self.p
        return {
            "schema_version": 1,
            "cost_event_id": f"{p.use_case_id}-{self.seq}",
            "event_time": _iso(t),
            "tenant_id": p.tenant_id,
            "use_case_id": p.use_case_id,
            "risk_tier": p.risk_tier,
            "environment": p.environment,
            "business_unit": p.business_unit,
            "cost_center": p.cost_center,
            "route_policy_version": p.route_policy_version,
            "trace_id": trace,
            "provider": p.provider,
            "allocation_method": "direct_metered",
            **fields,
        }

    def _model_call(self, t: datetime, trace: str, step: int, retry: bool = False) -> dict:
        p, rng = self.p, self.rng
        bloat = self._active(t, "prompt_bloat")
        inp = rng.lognormal(math.log(p.input_tokens_median), p.token_sigma)
        inp *= bloat.multiplier(t) if bloat else 1.0
        out = rng.lognormal(math.log(p.output_tokens_median), p.token_sigma)
        hit_rate = 0.02 if self._active(t, "cache_collapse") else p.cache_hit_rate
        hit = rng.random() < hit_rate
        model = p.expensive_model if self._active(t, "misrouted_model") else p.model
        return self._event(
            t,
            trace,
            component="model_call",
            model_or_service=model,
            input_tokens=int(inp),
            output_tokens=int(out),
            cached_tokens=int(inp * 0.8) if hit else 0,
            cache_status="hit" if hit else "miss",
            step_number=step,
            is_retry=retry,
            api_calls=1,
            workflow_step="generate",
        )

    def _tool_call(self, t: datetime, trace: str, step: int, retry: bool = False) -> dict:
        return self._event(
            t,
            trace,
            component="tool_call",
            model_or_service=self.p.tool,
            api_calls=1,
            allocated_cost_usd=self.p.tool_cost_usd,
            step_number=step,
            is_retry=retry,
            workflow_step="tool",
        )

    def minute(self, t0: datetime) -> list[dict[str, Any]]:
        p, rng = self.p, self.rng
        if p.history_start is not None and t0 < p.history_start:
            return []
        rate = p.tasks_per_minute * traffic_shape(t0, p.weekend_factor, p.diurnal_floor)
        for kind in VOLUME_KINDS:
            inc = self._active(t0, kind)
            rate *= inc.multiplier(t0) if inc else 1.0
        events: list[dict[str, Any]] = []
        for _ in range(int(rng.poisson(rate))):
            events.extend(self._task(t0 + timedelta(seconds=float(rng.uniform(0, 55)))))
        events.extend(self._loop(t0))
        return events

    def _task(self, t: datetime) -> list[dict[str, Any]]:
        p, rng = self.p, self.rng
        trace = f"{p.use_case_id}-t{self.seq}"
        steps = int(rng.integers(p.steps_per_task[0], p.steps_per_task[1] + 1))
        out = []
        for step in range(1, steps + 1):
            retry = rng.random() < p.retry_prob
            out.append(self._model_call(t, trace, step, retry=retry))
            if rng.random() < p.tool_call_prob:
                out.append(self._tool_call(t + timedelta(milliseconds=300), trace, step))
            t += timedelta(seconds=float(rng.uniform(0.5, 2.5)))
        if rng.random() < p.outcome_rate:
            out[-1]["business_outcome_id"] = f"case-{trace}"
        return out

    def _loop(self, t0: datetime) -> list[dict[str, Any]]:
        """A runaway agent: ~40 retried model+tool steps a minute on one trace."""
        if not self._active(t0, "runaway_loop"):
            self.loop_trace = None
            return []
        if self.loop_trace is None:
            self.loop_trace = f"{self.p.use_case_id}-loop-{self.seq}"
            self.loop_step = 0
        out = []
        for k in range(20):
            t = t0 + timedelta(seconds=k * 3 + 0.1)
            self.loop_step += 1
            out.append(self._model_call(t, self.loop_trace, self.loop_step, retry=True))
            out.append(
                self._tool_call(
                    t + timedelta(seconds=1), self.loop_trace, self.loop_step, retry=True
                )
            )
        return out


def simulate_fleet(
    fleet: Fleet,
    start: datetime,
    duration: timedelta,
    incidents: list[Incident] | None = None,
    seed: int = 1,
) -> Iterator[dict[str, Any]]:
    """Yield cost events for the fleet from ``start`` for ``duration``, in event-time order."""
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    rng = np.random.default_rng(seed)
    streams = [_UseCaseStream(p, incidents or [], rng) for p in fleet.use_cases]
    t = start
    pending: list[dict[str, Any]] = []  # events of tasks that run past their starting minute
    while t < start + duration:
        for stream in streams:
            pending.extend(stream.minute(t))
        pending.sort(key=lambda e: e["event_time"])
        cutoff = _iso(t + _MINUTE)
        split = next((i for i, e in enumerate(pending) if e["event_time"] >= cutoff), len(pending))
        yield from pending[:split]
        pending = pending[split:]
        t += _MINUTE
    yield from pending
