"""The ``session_outlier`` condition: one session (trace) dearer than nearly all before it.

Why a rule kind of its own: a runaway agent burns money inside *one* session long before the
use case's spend rate moves, and a fixed per-session limit ($1) is wrong for every use case but
one. Each use case learns, online, a high quantile of its finished sessions' cost
(:class:`~spendfuse.detectors.session_outliers.SessionOutliers`: a fading histogram of log
cost), and the event that carries a running session past it yields a holding verdict about
*that* session: its id is the verdict's instance (one alert, fingerprint and trace kill per
session), its running cost and steps are the evidence, the learned quantile the threshold.

Decided at every event of a trace, so the crossing is seen within the event that made it. The
tracker's state is plain data in the rule instance's state and is worked on in place: an
ordinary event updates one small list; only a finishing session rewrites the histogram.

Every flagged session already alerting gets a non-holding verdict at each later event, so the
lifecycle resolves it after ``keep_firing_for``; a trace kill is restored or left to expire as
its action says (``restore_on_clear``).
"""

from __future__ import annotations

from typing import Any

from spendfuse.detectors.session_outliers import SessionOutliers
from spendfuse.rules.conditions import Verdict
from spendfuse.rules.metrics.aggregates import id_key
from spendfuse.rules.model import SessionOutlierCondition
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

_FIRING_KEY = "firing"  # flagged sessions whose alert may still be open: key -> [ms, shown id]
_MAX_FIRING = 256  # at most this many flagged sessions awaiting their resolution per use case
_MAX_SHOWN = 256  # longer trace ids are shown as their digest (the evidence's bound)


def session_verdicts(
    cond: SessionOutlierCondition,
    event: CostEvent,
    state: dict[str, Any],
    open_instances: dict[str, Any],
    gkey: str,
) -> list[Verdict]:
    """The verdicts of one event: a holding one for a session it carried past the quantile,
    non-holding ones for flagged sessions still alerting. ``state`` is the rule instance's
    tracker state (plain data, updated in place); ``open_instances`` the rule's lifecycle
    instances (a flagged session's instance is ``gkey@trace``)."""
    firing: dict[str, list[Any]] = state.setdefault(_FIRING_KEY, {})
    out = _clearing(firing, event, open_instances, gkey) if firing else []
    if not event.trace_id:
        return out
    saved = state.get("tracker")
    if saved:  # every event but a use case's first: its parameters are in its state
        tracker = SessionOutliers.from_state(saved)
    else:
        tracker = SessionOutliers.bind(
            state.setdefault("tracker", {}),
            q=cond.quantile,
            idle_s=float(cond.idle.seconds),
            max_open=cond.max_open,
            min_cost_usd=cond.min_cost_usd,
            grace_period=cond.min_sessions,
        )
    key = id_key(event.trace_id)  # a long id is kept as a digest: state stays small
    flag = tracker.observe(key, event.event_time, event.cost_usd)
    if flag is None:
        return out
    if len(firing) >= _MAX_FIRING:
        firing.pop(next(iter(firing)))
    # the kill names the trace as gateways see it; alert and evidence a bounded id
    trace = event.trace_id if len(event.trace_id) <= _MAX_SHOWN else key
    firing[key] = [to_epoch_ms(flag.flagged_at), trace]
    pct = f"P{flag.q * 100:g}"
    out.append(
        Verdict(
            holds=True,
            metric=f"trace_cost_usd[{pct} of sessions]",
            value=flag.cost_usd,
            threshold=flag.threshold_usd,
            instance=key,
            labels={"trace_id": trace},
            annotations={
                "trace_id": trace,
                "session_started_at": flag.started_at.isoformat(),
                "sessions_learned": str(flag.sessions_learned),
            },
            fields={
                "trace_id": trace,
                "steps": flag.steps,
                "quantile": pct,
                "sessions_learned": flag.sessions_learned,
                "ratio": flag.cost_usd / flag.threshold_usd if flag.threshold_usd else 0.0,
            },
            targets={"trace": event.trace_id},
            traces=[(trace, flag.cost_usd, flag.steps)],
        )
    )
    return out


def _clearing(
    firing: dict[str, list[Any]], event: CostEvent, open_instances: dict[str, Any], gkey: str
) -> list[Verdict]:
    """Non-holding verdicts for flagged sessions whose alert is still open (the lifecycle
    resolves each after ``keep_firing_for``); sessions already resolved are forgotten."""
    out = []
    now_ms = to_epoch_ms(event.event_time)
    for key, (flagged_ms, shown) in list(firing.items()):
        if f"{gkey}@{key}" not in open_instances and flagged_ms < now_ms:
            del firing[key]  # resolved (or never opened)
            continue
        out.append(Verdict(False, "trace_cost_usd", instance=key, labels={"trace_id": shown}))
    return out
