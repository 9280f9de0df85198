"""The ``anomaly`` condition: a signal bucketed in event time, judged by a registry detector.

Each closed bucket (see :mod:`spendfuse.detectors.spend_signals`) yields one verdict, stamped
with the bucket's start, so the lifecycle's ``for`` and ``keep_firing_for`` count buckets in
event time. The detector is any registered one, named in the rule file; its state is plain data
in the rule instance's condition state, so replay and the worker agree. A per-call signal's
point (cost or tokens per call) also carries the bucket's calls and their mean log value
(``n``, ``log_mean``), so a sequential test (``unit_shift``) weighs the calls one by one.

Growth is not waste: the spend signal's verdict says which drove it (``driver``), comparing the
bucket's calls and cost per call with their slow moving averages: traffic that grew at a flat
unit cost is ``volume``, the same calls at a higher price per call is ``unit cost``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from spendfuse.detectors import BaseDetector, create, from_state
from spendfuse.detectors.seasonal_baseline import Prior
from spendfuse.detectors.spend_signals import ClosedBucket
from spendfuse.rules.conditions import Verdict
from spendfuse.rules.model import AnomalyCondition
from spendfuse.schemas.common import Component
from spendfuse.schemas.cost_event import CostEvent

_UNIT_SIGNALS = frozenset({"cost_per_call_usd", "tokens_per_call", "cache_hit_rate"})
_DRIVER_ALPHA = 0.05  # the slow averages the driver compares with: about 20 buckets
_LIVE_MAX = 4096  # watch instances: the default pack's five per use case, about 20 KB each
_LIVE: OrderedDict[int, tuple[dict[str, Any], BaseDetector]] = OrderedDict()
"""The detectors last saved, by the saved state's identity: a watch judges at every bucket
close, and restoring its detector from plain data each time was a large share of the work.
Only for detectors whose restore is exact (``exact_restore``), and only while the state still
holds that very saved object (a state read back from a store, or replaced, restores as ever).
The least recently saved go first past ``_LIVE_MAX`` (a worker with more watch instances than
that restores some of them, as before)."""


def _restore(saved: dict[str, Any]) -> BaseDetector:
    """``from_state(saved)``, or the detector that saved it (exactly the same, see ``_LIVE``)."""
    hit = _LIVE.pop(id(saved), None)
    if hit is not None and hit[0] is saved:
        return hit[1]
    return from_state(saved)


def _save(det: BaseDetector) -> dict[str, Any]:
    """``det.to_state()``, remembering ``det`` when its restore is exact."""
    saved = det.to_state()
    if det.exact_restore:
        _LIVE[id(saved)] = (saved, det)
        if len(_LIVE) > _LIVE_MAX:
            _LIVE.popitem(last=False)
    return saved


def track_loop(state: dict[str, Any], event: CostEvent) -> None:
    """Remember the latest retried tool and looping task: the targets of a loop guard."""
    if event.is_retry and event.component is Component.TOOL_CALL and event.model_or_service:
        state["loop_tool"] = event.model_or_service
    if event.trace_id and (event.is_retry or (event.step_number or 0) > 10):
        state["loop_trace"] = event.trace_id


def anomaly_verdicts(
    cond: AnomalyCondition,
    closed: list[ClosedBucket],
    state: dict[str, Any],
    loop: dict[str, Any],
    idle: bool = False,
) -> list[Verdict]:
    """One verdict per closed bucket (the engine folds events into buckets shared by the
    watches of one bucket size, and tracks the loop's targets there, in ``loop``); ``state``
    is the rule instance's detector state. ``idle``: nothing of the watch is pending or
    firing, so until a bucket is abnormal a verdict that does not hold would change nothing;
    those are not built (the detectors still judge and learn every bucket)."""
    size_s = cond.bucket.seconds
    targets = {k: loop[f"loop_{k}"] for k in ("tool", "trace") if loop.get(f"loop_{k}")}
    out = []
    for bucket in closed:
        verdict = _judge(cond, bucket, state, size_s, idle)
        if verdict is not None:
            verdict.targets = targets
            out.append(verdict)
            idle = False  # from the first verdict on, each one counts (for, keep_firing_for)
    return out


def _judge(
    cond: AnomalyCondition,
    bucket: ClosedBucket,
    state: dict[str, Any],
    size_s: int,
    idle: bool = False,
) -> Verdict | None:
    value = bucket.values.get(cond.signal)
    driver = _driver(bucket, state)
    if value is None:
        return None
    if "det" not in state and cond.prior is not None:
        verdict = _arm(cond, bucket, state, value, size_s)
        return None if idle else verdict
    det = _restore(state["det"]) if "det" in state else create(cond.detector.spec())
    point: dict[str, Any] = {"t": bucket.start, "value": value}
    per_call = bucket.per_call.get(cond.signal)
    if per_call is not None:  # a sequential test weighs the bucket's calls one by one
        point["n"], point["log_mean"] = per_call
    warmed = getattr(det, "warmed_up", True)
    at_ms = int(bucket.start.timestamp() * 1000)
    if hasattr(det, "expected") and hasattr(det, "zscore"):
        expected = float(det.expected(point))
        z = float(det.zscore(point))
        if cond.direction == "up":
            abnormal = (
                z >= cond.z
                and value >= cond.min_value
                and value >= cond.min_ratio * max(expected, 1e-12)
            )
        else:
            abnormal = -z >= cond.z and expected - value >= cond.min_drop
    else:
        score = float(det.score_one(point))
        # a test with a baseline but no z-score (``unit_shift``) still names its baseline
        expected = float(det.expected(point)) if hasattr(det, "expected") else float("nan")
        abnormal = score >= cond.score and value >= cond.min_value
    det.learn_one(point)
    state["det"] = _save(det)
    holds = warmed and abnormal
    if idle and not holds:
        return None
    has_base = expected == expected and expected > 0  # not NaN, positive
    ratio = value / expected if has_base else 0.0
    labels = {"driver": "unit cost" if cond.signal in _UNIT_SIGNALS else driver}
    return Verdict(
        holds=holds,
        metric=cond.signal,
        value=value,
        threshold=cond.min_ratio if cond.direction == "up" else cond.min_drop,
        baseline=expected if expected == expected else None,
        at_ms=at_ms + size_s * 1000,  # decided when the bucket closed
        window_s=size_s,
        window_start=bucket.start,
        labels=labels,
        fields={"ratio": ratio, "driver": _driver_text(labels["driver"], bucket)},
    )


def _arm(
    cond: AnomalyCondition, bucket: ClosedBucket, state: dict[str, Any], value: float, size_s: int
) -> Verdict:
    """A new use case's first bucket: the prior its baseline starts from (judged from the next
    bucket on, instead of after the detector's grace period)."""
    assert cond.prior is not None
    det = create(cond.detector.spec())
    det.start_from(Prior(level=value, spread=cond.prior.spread, weight=cond.prior.weight))  # type: ignore[attr-defined]
    state["det"] = det.to_state()
    return Verdict(
        holds=False,
        metric=cond.signal,
        value=value,
        baseline=value,
        at_ms=int(bucket.start.timestamp() * 1000) + size_s * 1000,
        window_s=size_s,
        window_start=bucket.start,
    )


def _driver(bucket: ClosedBucket, state: dict[str, Any]) -> str:
    """``volume`` or ``unit cost``: which of calls and cost per call moved more, relative to
    their slow averages (kept per rule instance, updated with every closed bucket)."""
    calls = bucket.values.get("calls", 0.0)
    spend = bucket.values.get("spend_usd", 0.0)
    unit = spend / calls if calls else None
    avg = state.get("drv")
    driver = "volume"
    if avg is not None and unit is not None and avg[0] > 0 and avg[1] > 0:
        calls_ratio, unit_ratio = calls / avg[0], unit / avg[1]
        driver = "unit cost" if unit_ratio > calls_ratio else "volume"
    if unit is not None:
        if avg is None:
            state["drv"] = [calls, unit]
        else:
            avg[0] += _DRIVER_ALPHA * (calls - avg[0])
            avg[1] += _DRIVER_ALPHA * (unit - avg[1])
    return driver


def _driver_text(driver: str, bucket: ClosedBucket) -> str:
    if driver == "unit cost":
        unit = bucket.values.get("cost_per_call_usd")
        return "unit cost" + (f": ${unit:.4f} per call" if unit is not None else "")
    calls = bucket.values.get("calls", 0.0)
    return f"volume: {calls:.0f} calls in the window"
