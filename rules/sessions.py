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
from spendfuse.rules.model import SessionOutlierCondition
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

_FIRING_KEY = "firing"  # flagged sessions whose alert may still be open: trace -> flagged ms
_MAX_FIRING = 256  # at most this many flagged sessions awaiting their resolution per use case


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
    firing: dict[str, int] = state.setdefault(_FIRING_KEY, {})
    out = _clearing(firing, event, open_instances, gkey) if firing else []
    if not event.trace_id:
        return out
    tracker = SessionOutliers.bind(
        state.setdefault("tracker", {}),
        q=cond.quantile,
        idle_s=float(cond.idle.seconds),
        max_open=cond.max_open,
        min_cost_usd=cond.min_cost_usd,
        grace_period=cond.min_sessions,
    )
    flag = tracker.observe(event.trace_id, event.event_time, event.cost_usd)
    if flag is None:
        return out
    if len(firing) >= _MAX_FIRING:
        firing.pop(next(iter(firing)))
    firing[flag.trace_id] = to_epoch_ms(flag.flagged_at)
    pct = f"P{flag.q * 100:g}"
    out.append(
        Verdict(
            holds=True,
            metric=f"trace_cost_usd[{pct} of sessions]",
            value=flag.cost_usd,
            threshold=flag.threshold_usd,
            instance=flag.trace_id,
            labels={"trace_id": flag.trace_id},
            annotations={
                "trace_id": flag.trace_id,
                "session_started_at": flag.started_at.isoformat(),
                "sessions_learned": str(flag.sessions_learned),
            },
            fields={
                "trace_id": flag.trace_id,
                "steps": flag.steps,
                "quantile": pct,
                "sessions_learned": flag.sessions_learned,
                "ratio": flag.cost_usd / flag.threshold_usd if flag.threshold_usd else 0.0,
            },
            targets={"trace": flag.trace_id},
            traces=[(flag.trace_id, flag.cost_usd, flag.steps)],
        )
    )
    return out


def _clearing(
    firing: dict[str, int], event: CostEvent, open_instances: dict[str, Any], gkey: str
) -> list[Verdict]:
    """Non-holding verdicts for flagged sessions whose alert is still open (the lifecycle
    resolves each after ``keep_firing_for``); sessions already resolved are forgotten."""
    out = []
    for trace in list(firing):
        if f"{gkey}@{trace}" not in open_instances and firing[trace] < to_epoch_ms(
            event.event_time
        ):
            del firing[trace]  # resolved (or never opened, e.g. a silenced rule)
            continue
        out.append(Verdict(False, "trace_cost_usd", instance=trace, labels={"trace_id": trace}))
    return out
