"""Spend anomaly rules: per-use-case signals against seasonal baselines, growth told from waste.

Each *watch* names a signal (see :mod:`spendfuse.detectors.spend_signals`), the bucket group it
is measured in, a baseline detector spec from the detector registry, and when a deviation counts:
a z-score *and* a ratio to the baseline (so a statistically odd but cheap wiggle does not page
anyone), held for ``for_buckets`` consecutive buckets. Alerts fire once and resolve once, after
``clear_buckets`` normal buckets in a row or once the baseline has adopted a confirmed new level.

Growth is not inefficiency: the spend-spike watch needs spend at several times its baseline, and
the unit-cost watches look at cost and tokens *per call*, which traffic growth leaves flat. Every
alert says which it was (``driver``: volume or unit cost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spendfuse.detectors import from_state as detector_from_state
from spendfuse.detectors import seasonal_baseline  # noqa: F401  (registers it)
from spendfuse.detectors.registry import create
from spendfuse.detectors.spend_signals import ClosedBucket, add_event
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.guardrail import check_action
from spendfuse.rules.ids import fingerprint, stable_id
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.schemas.common import RiskTier, Severity, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

GroupName = Literal["fast", "volume", "unit"]


class Watch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    signal: str
    group: GroupName
    baseline: dict[str, Any]
    direction: Literal["up", "down"] = "up"
    z_threshold: float = Field(default=4.0, gt=0)
    min_ratio: float = Field(default=2.0, gt=0, description="value/baseline (up) needed")
    min_drop: float = Field(default=0.0, ge=0, description="baseline - value (down) needed")
    min_value: float = Field(default=0.0, ge=0, description="ignore values below this")
    for_buckets: int = Field(default=2, gt=0)
    clear_buckets: int = Field(default=3, gt=0)
    severity: Severity = Severity.MEDIUM
    action: Literal["alert", "kill_switch_tool"] = "alert"
    command_ttl_s: int = Field(default=3600, gt=0)
    summary: str


class AnomalyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buckets_s: dict[GroupName, int] = {"fast": 60, "volume": 300, "unit": 600}
    min_calls: int = Field(default=10, gt=0)
    warmup_buckets: int | None = Field(
        default=None, ge=0, description="Override every baseline's grace period (in buckets)."
    )
    watches: list[Watch] = Field(default_factory=lambda: list(DEFAULT_WATCHES))

    def baseline_spec(self, watch: Watch) -> dict[str, Any]:
        if self.warmup_buckets is None:
            return watch.baseline
        params = {**watch.baseline.get("params", {}), "grace_period": self.warmup_buckets}
        return {**watch.baseline, "params": params}


def _seasonal(**params: Any) -> dict[str, Any]:
    """A seasonal-baseline spec that never learns points beyond 3 sigma (below any alert)."""
    return {"name": "seasonal_baseline", "params": {"z_learn": 3.0, **params}}


DEFAULT_WATCHES: tuple[Watch, ...] = (
    Watch(rule="agent_loop_anomaly", signal="loop_cost_usd", group="fast",
          baseline=_seasonal(transform="log", offset=0.01, direction="up", seasonality="none",
                             alpha_level=0.01, alpha_scale=0.01, min_scale=0.3,
                             confirm_points=240, grace_period=60),
          z_threshold=4.0, min_ratio=3.0, min_value=0.02, for_buckets=2, clear_buckets=5,
          severity=Severity.HIGH, action="kill_switch_tool",
          summary="Retry/tool-loop cost on {use_case_id} is {ratio:.1f}x its baseline"),
    Watch(rule="spend_spike_anomaly", signal="spend_usd", group="volume",
          baseline=_seasonal(transform="log", offset=0.05, direction="up", alpha_level=0.02,
                             alpha_season=0.05, alpha_scale=0.02, min_scale=0.15,
                             confirm_points=72, grace_period=96),
          z_threshold=3.0, min_ratio=3.0, min_value=0.1, for_buckets=3, clear_buckets=3,
          severity=Severity.HIGH,
          summary="Spend on {use_case_id} is {ratio:.1f}x its seasonal baseline ({driver})"),
    Watch(rule="unit_cost_anomaly", signal="cost_per_call_usd", group="unit",
          baseline=_seasonal(transform="log", direction="up", seasonality="none",
                             alpha_level=0.03, alpha_scale=0.03, min_scale=0.05,
                             confirm_points=36, grace_period=36),
          z_threshold=4.0, min_ratio=1.3, for_buckets=2, clear_buckets=3,
          summary="Cost per call on {use_case_id} is {ratio:.2f}x its baseline ({driver})"),
    Watch(rule="token_bloat_anomaly", signal="tokens_per_call", group="unit",
          baseline=_seasonal(transform="log", direction="up", seasonality="none",
                             alpha_level=0.03, alpha_scale=0.03, min_scale=0.05,
                             confirm_points=36, grace_period=36),
          z_threshold=4.0, min_ratio=1.4, for_buckets=2, clear_buckets=3,
          summary="Tokens per call on {use_case_id} are {ratio:.2f}x their baseline"),
    Watch(rule="cache_collapse_anomaly", signal="cache_hit_rate", group="unit",
          direction="down",
          baseline=_seasonal(direction="down", seasonality="none", alpha_level=0.03,
                             alpha_scale=0.03, min_scale=0.03, confirm_points=36,
                             grace_period=36),
          z_threshold=3.0, min_drop=0.15, for_buckets=2, clear_buckets=3,
          summary="Cache hit rate on {use_case_id} fell to {value:.0%} from {baseline:.0%}"),
)  # fmt: skip


class AnomalyRule:
    """All watches over one use case; its state is a plain dict kept by the engine."""

    name = "spend_anomaly"

    def __init__(self, config: AnomalyConfig | None = None) -> None:
        self.config = config or AnomalyConfig()
        self._by_group: dict[str, list[Watch]] = {}
        for w in self.config.watches:
            self._by_group.setdefault(w.group, []).append(w)

    def evaluate_one(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        out = Decisions()
        state["tenant_id"], state["risk_tier"] = event.tenant_id, event.risk_tier.value
        if event.is_retry and event.component.value == "tool_call" and event.model_or_service:
            state["loop_tool"] = event.model_or_service
        groups = state.setdefault("groups", {})
        for group, watches in self._by_group.items():
            size = self.config.buckets_s[group]  # type: ignore[index]
            closed = add_event(groups.setdefault(group, {}), event, size, self.config.min_calls)
            for bucket in closed:
                for watch in watches:
                    out.extend(self._on_bucket(watch, bucket, event, state, size))
        return out

    def _on_bucket(self, w: Watch, bucket: ClosedBucket, event: CostEvent,
                   state: dict[str, Any], size_s: int) -> Decisions:  # fmt: skip
        value = bucket.values.get(w.signal)
        if value is None:
            return Decisions()
        baselines = state.setdefault("baselines", {})
        det = (detector_from_state(baselines[w.rule]) if w.rule in baselines
               else create(self.config.baseline_spec(w)))  # fmt: skip
        point = {"t": bucket.start, "value": value}
        warmed = getattr(det, "warmed_up", True)
        expected = det.expected(point)  # type: ignore[attr-defined]
        z = det.zscore(point)  # type: ignore[attr-defined]
        det.learn_one(point)
        baselines[w.rule] = det.to_state()
        if w.direction == "up":
            abnormal = (z >= w.z_threshold and value >= w.min_value
                        and value >= w.min_ratio * max(expected, 1e-12))  # fmt: skip
        else:
            abnormal = -z >= w.z_threshold and expected - value >= w.min_drop
        track = state.setdefault("alerts", {}).setdefault(w.rule, {"run": 0, "clear": 0})
        ctx = _Context(w, bucket, event, state, value, expected, size_s)
        return self._transition(track, warmed and abnormal, ctx)

    def _transition(self, track: dict[str, Any], abnormal: bool, ctx: _Context) -> Decisions:
        w = ctx.watch
        if abnormal:
            track["run"] += 1
            track["clear"] = 0
            if not track.get("firing") and track["run"] >= w.for_buckets:
                return _fire(track, ctx)
            return Decisions()
        track["run"] = 0
        if track.get("firing"):
            track["clear"] += 1
            if track["clear"] >= w.clear_buckets:
                return _resolve(track, ctx)
        return Decisions()


@dataclass(slots=True)
class _Context:
    watch: Watch
    bucket: ClosedBucket
    event: CostEvent
    state: dict[str, Any]
    value: float
    expected: float
    size_s: int

    @property
    def decided_at(self) -> datetime:
        """Decisions are stamped with the event time of the event that closed the bucket."""
        return self.event.event_time

    def fingerprint(self) -> str:
        return fingerprint(self.watch.rule, self.state["tenant_id"], self.event.use_case_id)

    def evidence(self) -> Evidence:
        return Evidence(metric=self.watch.signal, value=round(self.value, 8),
                        baseline=round(self.expected, 8), window_s=self.size_s,
                        window_start=self.bucket.start)  # fmt: skip

    def driver(self) -> str:
        if self.watch.signal in ("cost_per_call_usd", "tokens_per_call", "cache_hit_rate"):
            return "unit cost"
        calls = self.bucket.values.get("calls", 0.0)
        unit = self.bucket.values.get("cost_per_call_usd")
        return f"volume: {calls:.0f} calls in the window" + (
            f", ${unit:.4f} per call" if unit is not None else "")


def _fire(track: dict[str, Any], ctx: _Context) -> Decisions:
    w, ev = ctx.watch, ctx.event
    fp = ctx.fingerprint()
    fired_ms = to_epoch_ms(ctx.decided_at)
    ratio = ctx.value / ctx.expected if ctx.expected > 0 else float("inf")
    commands: list[ControlCommand] = []
    held: list[str] = []
    tool = ctx.state.get("loop_tool")
    if w.action == "kill_switch_tool" and tool:
        verdict = check_action(RiskTier(ctx.state["risk_tier"]), risk_protection=False,
                               action=f"kill_switch on tool {tool}")  # fmt: skip
        if verdict.allowed:
            commands.append(_kill_tool(ctx, tool, fp))
        else:
            held.append(verdict.reason)
    track.update(firing=True, fired_at_ms=fired_ms, commands=[c.target.id for c in commands])
    summary = w.summary.format(use_case_id=ev.use_case_id, ratio=ratio, value=ctx.value,
                               baseline=ctx.expected, driver=ctx.driver())  # fmt: skip
    alert = Alert(
        alert_id=stable_id(fp, fired_ms), fingerprint=fp, rule=w.rule, status="firing",
        severity=w.severity, tenant_id=ctx.state["tenant_id"], use_case_id=ev.use_case_id,
        summary=summary, evidence=ctx.evidence(), fired_at=ctx.decided_at,
        labels={"risk_tier": ctx.state["risk_tier"], "driver": ctx.driver().split(":")[0]},
        actions_taken=[c.command_id for c in commands], guardrail_held=held,
        how_to_silence=f"spendfuse silence add --matcher 'fingerprint=\"{fp}\"' --for 4h",
    )  # fmt: skip
    return Decisions(alerts=[alert], commands=commands)


def _kill_tool(ctx: _Context, tool: str, fp: str) -> ControlCommand:
    target = Target(type=TargetType.TOOL, id=tool)
    at = ctx.decided_at
    return ControlCommand(
        command_id=stable_id(ctx.watch.rule, target.key, "kill_switch", to_epoch_ms(at)),
        kind=CommandKind.KILL_SWITCH, target=target, issued_by=f"rule:{ctx.watch.rule}",
        reason=f"agent loop guard: retry/tool cost {ctx.value:.3f} USD per {ctx.size_s}s vs "
               f"baseline {ctx.expected:.3f} on {ctx.event.use_case_id}",
        evidence=ctx.evidence(), tenant_id=ctx.state["tenant_id"],
        use_case_id=ctx.event.use_case_id, alert_fingerprint=fp, issued_at=at,
        expires_at=at + timedelta(seconds=ctx.watch.command_ttl_s),
        how_to_lift=f"spendfuse restore tool {tool} --reason '...'",
    )  # fmt: skip


def _resolve(track: dict[str, Any], ctx: _Context) -> Decisions:
    w, ev = ctx.watch, ctx.event
    fp = ctx.fingerprint()
    fired = datetime.fromtimestamp(track["fired_at_ms"] / 1000, tz=UTC)
    out = Decisions()
    out.alerts.append(Alert(
        alert_id=stable_id(fp, track["fired_at_ms"]), fingerprint=fp, rule=w.rule,
        status="resolved", severity=w.severity, tenant_id=ctx.state["tenant_id"],
        use_case_id=ev.use_case_id, summary=f"{w.signal} on {ev.use_case_id} is back to normal",
        evidence=ctx.evidence(), fired_at=fired, resolved_at=ctx.decided_at,
        labels={"risk_tier": ctx.state["risk_tier"]},
    ))  # fmt: skip
    for tool in track.get("commands", []):
        target = Target(type=TargetType.TOOL, id=tool)
        out.commands.append(ControlCommand(
            command_id=stable_id(w.rule, target.key, "restore", to_epoch_ms(ctx.decided_at)),
            kind=CommandKind.RESTORE, target=target, issued_by=f"rule:{w.rule}",
            reason=f"{w.signal} back to normal", evidence=ctx.evidence(),
            tenant_id=ctx.state["tenant_id"], use_case_id=ev.use_case_id,
            alert_fingerprint=fp, issued_at=ctx.decided_at,
        ))  # fmt: skip
    track.clear()
    track.update(run=0, clear=0)
    return out
