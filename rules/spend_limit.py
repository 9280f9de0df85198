"""Spend-rate limit: per-use-case spend in a 1-minute event-time window over a configured limit.

The first, simplest decision path. It fires once when a window's spend crosses the limit, stays
firing while consecutive windows exceed it, and resolves when a completed window ends under the
limit (or a window passes with no spend). Low-risk use cases get the configured command (degrade
or kill switch); the guardrail turns that into an alert-only decision for riskier tiers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from spendfuse.rules.decisions import Decisions
from spendfuse.rules.guardrail import check_action
from spendfuse.rules.ids import fingerprint, stable_id
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    DegradeParams,
    Target,
    TargetType,
)
from spendfuse.schemas.common import DegradationLevel, RiskTier, Severity, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

RULE_NAME = "spend_rate_limit"


class SpendLimitConfig(BaseModel):
    """Settings of the spend-rate limit (``SPENDFUSE_SPEND_LIMIT__*`` in the environment)."""

    model_config = ConfigDict(extra="forbid")

    limit_usd: float = Field(default=5.0, gt=0, description="Spend per window that trips it.")
    window_s: int = Field(default=60, gt=0)
    action: Literal["degrade", "kill_switch", "alert"] = "degrade"
    level: DegradationLevel = DegradationLevel.L1
    severity: Severity = Severity.HIGH
    command_ttl_s: int = Field(default=3600, gt=0, description="Commands expire after this.")
    mode: Literal["enforce", "shadow"] = "enforce"


def _ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class SpendLimitRule:
    """Pure rule over one use case's events; its state is a plain dict kept by the caller."""

    name = RULE_NAME

    def __init__(self, config: SpendLimitConfig | None = None) -> None:
        self.config = config or SpendLimitConfig()

    def evaluate_one(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        out = Decisions()
        window_ms = self.config.window_s * 1000
        ts_ms = to_epoch_ms(event.event_time)
        start_ms = ts_ms - ts_ms % window_ms
        current = state.get("window_start_ms")
        if current is None or start_ms > current:
            closed_exceeded = (
                current is not None
                and start_ms == current + window_ms
                and state.get("spend_usd", 0.0) > self.config.limit_usd
            )
            if state.get("firing") and not closed_exceeded:
                out.extend(self._resolve(event, state))
            state["window_start_ms"] = start_ms
            state["spend_usd"] = 0.0
        elif start_ms < current:
            return out  # late event: its window is closed; it is still accepted and counted
        state["spend_usd"] = state.get("spend_usd", 0.0) + event.cost_usd
        if not state.get("firing") and state["spend_usd"] > self.config.limit_usd:
            out.extend(self._fire(event, state))
        return out

    def _evidence(self, state: dict[str, Any]) -> Evidence:
        return Evidence(
            metric="spend_usd_per_window",
            value=round(state["spend_usd"], 6),
            threshold=self.config.limit_usd,
            window_s=self.config.window_s,
            window_start=_ms_to_dt(state["window_start_ms"]),
        )

    def _fire(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        cfg = self.config
        fp = fingerprint(self.name, event.tenant_id, event.use_case_id)
        fired_ms = to_epoch_ms(event.event_time)
        evidence = self._evidence(state)
        commands: list[ControlCommand] = []
        held: list[str] = []
        if cfg.action != "alert":
            verdict = check_action(event.risk_tier, risk_protection=False, action=cfg.action)
            if verdict.allowed:
                commands.append(self._command(event, cfg.action, fp, evidence))
            else:
                held.append(verdict.reason)
        state.update(
            firing=True,
            fired_at_ms=fired_ms,
            tenant_id=event.tenant_id,
            risk_tier=event.risk_tier.value,
            command_ids=[c.command_id for c in commands],
        )
        alert = Alert(
            alert_id=stable_id(fp, fired_ms),
            fingerprint=fp,
            rule=self.name,
            status="firing",
            severity=cfg.severity,
            tenant_id=event.tenant_id,
            use_case_id=event.use_case_id,
            summary=(
                f"Spend on {event.use_case_id} reached ${evidence.value:.2f} in "
                f"{cfg.window_s}s, over its ${cfg.limit_usd:.2f} limit"
            ),
            evidence=evidence,
            fired_at=event.event_time,
            labels={"risk_tier": event.risk_tier.value, "environment": event.environment.value},
            actions_taken=[c.command_id for c in commands],
            guardrail_held=held,
            how_to_silence=f"spendfuse silence add --matcher 'fingerprint=\"{fp}\"' --for 1h "
            "--author you --comment why",
        )
        return Decisions(alerts=[alert], commands=commands)

    def _command(
        self, event: CostEvent, action: str, fp: str, evidence: Evidence
    ) -> ControlCommand:
        cfg = self.config
        kind = CommandKind(action)
        target = Target(type=TargetType.USE_CASE, id=event.use_case_id)
        level = cfg.level if kind is CommandKind.DEGRADE else None
        return ControlCommand(
            command_id=stable_id(self.name, target.key, kind.value, to_epoch_ms(event.event_time)),
            kind=kind,
            mode=cfg.mode,
            target=target,
            level=level,
            params=_params_for(level),
            issued_by=f"rule:{self.name}",
            reason=f"spend ${evidence.value:.2f} per {cfg.window_s}s over ${cfg.limit_usd:.2f}",
            evidence=evidence,
            tenant_id=event.tenant_id,
            use_case_id=event.use_case_id,
            alert_fingerprint=fp,
            issued_at=event.event_time,
            expires_at=event.event_time + timedelta(seconds=cfg.command_ttl_s),
            how_to_lift=f"spendfuse restore use_case {event.use_case_id} --reason '...'",
        )

    def _resolve(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        fp = fingerprint(self.name, state.get("tenant_id", event.tenant_id), event.use_case_id)
        fired_ms = state["fired_at_ms"]
        out = Decisions()
        out.alerts.append(
            Alert(
                alert_id=stable_id(fp, fired_ms),
                fingerprint=fp,
                rule=self.name,
                status="resolved",
                severity=self.config.severity,
                tenant_id=state.get("tenant_id", event.tenant_id),
                use_case_id=event.use_case_id,
                summary=f"Spend on {event.use_case_id} is back under its limit",
                evidence=self._evidence(state),
                fired_at=_ms_to_dt(fired_ms),
                resolved_at=event.event_time,
                labels={"risk_tier": state.get("risk_tier", RiskTier.LOW.value)},
            )
        )
        if state.get("command_ids"):
            target = Target(type=TargetType.USE_CASE, id=event.use_case_id)
            out.commands.append(
                ControlCommand(
                    command_id=stable_id(
                        self.name, target.key, "restore", to_epoch_ms(event.event_time)
                    ),
                    kind=CommandKind.RESTORE,
                    mode=self.config.mode,
                    target=target,
                    level=DegradationLevel.L0,
                    issued_by=f"rule:{self.name}",
                    reason="spend back under the limit for a full window",
                    evidence=self._evidence(state),
                    tenant_id=state.get("tenant_id", event.tenant_id),
                    use_case_id=event.use_case_id,
                    alert_fingerprint=fp,
                    issued_at=event.event_time,
                )
            )
        for key in ("firing", "fired_at_ms", "command_ids"):
            state.pop(key, None)
        return out


def _params_for(level: DegradationLevel | None) -> DegradeParams:
    """Gateway parameters of each degradation level (DOMAIN's L0-L4 table)."""
    if level is DegradationLevel.L1:
        return DegradeParams(cache_first=True, model_tier="small", max_output_tokens=512)
    if level is DegradationLevel.L2:
        return DegradeParams(spillover=True, pause_batch=True)
    if level is DegradationLevel.L3:
        return DegradeParams(model_tier="approved_fallback", pause_batch=True, pause_sandbox=True)
    return DegradeParams()
