"""Multi-threshold budget and quota alerts (e.g. 50/80/95/100%), once per threshold per period.

Periods are calendar days or months in the tenant's IANA time zone. Each alert says the percent
used, the projected time of exhaustion at the period's burn rate so far, and when the period
ends in the tenant's local time. A period rolling over resolves the thresholds it fired. A hard
budget's ``on_exhausted`` action goes through the same guardrail as every rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.actions import Scope, plan_commands, restore_command
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.ids import stable_id
from spendfuse.rules.metrics.aggregates import AggregateView
from spendfuse.rules.model import BudgetSpec
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.common import Severity, format_rfc3339, to_epoch_ms


def period_bounds(at: datetime, period: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """Start and end of the day/month containing ``at``, as aware local datetimes."""
    local = at.astimezone(tz)
    if period == "day":
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        nxt = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
    else:
        start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


def project_exhaustion(spent: float, limit: float, start: datetime, at: datetime
                       ) -> datetime | None:  # fmt: skip
    """When spend reaches ``limit`` at the period's average burn rate; None if not burning."""
    elapsed_s = (at - start).total_seconds()
    if spent >= limit:
        return at
    if spent <= 0 or elapsed_s <= 0:
        return None
    return at + timedelta(seconds=(limit - spent) / (spent / elapsed_s))


def _severity(threshold: float) -> Severity:
    if threshold >= 100:
        return Severity.HIGH
    return Severity.MEDIUM if threshold >= 80 else Severity.LOW


class BudgetEvaluator:
    """Evaluates one budget for one scope; state lives under ``state["budget:<name>"]``."""

    def __init__(self, spec: BudgetSpec, kind: str = "budget") -> None:
        self.spec = spec
        self.kind = kind
        self.name = f"{kind}:{spec.name}"

    def evaluate_one(self, view: AggregateView, state: dict[str, Any], scope: Scope) -> Decisions:
        spec = self.spec
        if spec.environment is not None and view.event.environment is not spec.environment:
            return Decisions()
        key = view.state.get("d" if spec.period == "day" else "mo", {}).get("k")
        out = Decisions()
        if state.get("period") != key:
            out.extend(self._roll_over(state, view, scope))
            state.update(period=key, fired={}, issued=[])
        spent = view.sums(spec.period).get("spend_usd", 0.0)
        pct = spent * 100.0 / spec.limit_usd
        for threshold in sorted(spec.thresholds):
            if pct >= threshold and f"{threshold:g}" not in state["fired"]:
                state["fired"][f"{threshold:g}"] = to_epoch_ms(view.event.event_time)
                out.alerts.append(self._alert(view, scope, threshold, spent, pct, "firing"))
        if spec.on_exhausted is not None and pct >= 100 and not state.get("acted"):
            state["acted"] = True
            out.extend(self._act(view, scope, state, spent, pct))
        return out

    def fingerprint(self, scope: Scope, threshold: float) -> str:
        uc = self.spec.use_case_id or "*"
        return f"{self.name}@{threshold:g}%/{scope.tenant_id}/{uc}"

    def _act(self, view: AggregateView, scope: Scope, state: dict[str, Any], spent: float,
             pct: float) -> Decisions:  # fmt: skip
        action = self.spec.on_exhausted
        assert action is not None
        fp = self.fingerprint(scope, 100.0)
        planned = plan_commands(self.name, [action], scope, risk_protection=False,
                                at=view.event.event_time, fingerprint=fp,
                                evidence=self._evidence(spent, pct),
                                reason=f"{self.kind} {self.spec.name} exhausted "
                                f"(${spent:.2f} of ${self.spec.limit_usd:.2f})")  # fmt: skip
        state["issued"] = [[c.target.type.value, c.target.id, c.mode] for c in planned.commands]
        alert = self._alert(view, scope, 100.0, spent, pct, "firing")
        alert.alert_id = stable_id(alert.alert_id, "action")
        alert.fingerprint = f"{fp}/action"
        alert.summary = f"{self.kind} {self.spec.name} exhausted: " + (
            f"{action.kind} on {action.target.value}" if planned.commands else "no action taken")
        alert.actions_taken = [c.command_id for c in planned.commands]
        alert.guardrail_held = planned.held
        alert.labels["action"] = planned.commands[0].kind.value if planned.commands else "none"
        return Decisions(alerts=[alert], commands=planned.commands)

    def _roll_over(self, state: dict[str, Any], view: AggregateView, scope: Scope) -> Decisions:
        out = Decisions()
        for threshold, fired_ms in state.get("fired", {}).items():
            alert = self._alert(view, scope, float(threshold), 0.0, 0.0, "resolved",
                                period=state["period"])  # fmt: skip
            alert.fired_at = datetime.fromtimestamp(fired_ms / 1000, tz=UTC)
            alert.annotations = {"period": state["period"]}
            out.alerts.append(alert)
        for target_type, target_id, mode in state.get("issued", []):
            out.commands.append(restore_command(
                self.name, [target_type, target_id], mode, scope, view.event.event_time,
                self.fingerprint(scope, 100.0), self._evidence(0.0, 0.0)))  # fmt: skip
        state.pop("acted", None)
        return out

    def _evidence(self, spent: float, pct: float) -> Evidence:
        return Evidence(metric=f"{self.kind}_percent[{self.spec.period}]", value=round(pct, 3),
                        threshold=None, baseline=self.spec.limit_usd)  # fmt: skip

    def _alert(self, view: AggregateView, scope: Scope, threshold: float, spent: float,
               pct: float, status: str, period: str | None = None) -> Alert:  # fmt: skip
        spec, at = self.spec, view.event.event_time
        fp = self.fingerprint(scope, threshold)
        period_key = period or view.state.get("d" if spec.period == "day" else "mo", {}).get("k")
        start, end = period_bounds(at, spec.period, view.tz)
        eta = project_exhaustion(spent, spec.limit_usd, start, at)
        evidence = self._evidence(spent, pct)
        evidence.threshold = threshold
        who = spec.use_case_id or f"tenant {scope.tenant_id}"
        return Alert(
            alert_id=stable_id(fp, period_key), fingerprint=fp, rule=self.name,
            status=status, severity=_severity(threshold), tenant_id=scope.tenant_id,  # type: ignore[arg-type]
            use_case_id=spec.use_case_id or "*",
            summary=(f"{who} used {pct:.0f}% of its {spec.period}ly {self.kind} "
                     f"{spec.name} (${spent:.2f} of ${spec.limit_usd:.2f})") if status == "firing"
            else f"{self.kind} {spec.name} period {period_key} ended",
            evidence=evidence, fired_at=at, resolved_at=at if status == "resolved" else None,
            labels={"risk_tier": scope.risk_tier.value, "owner": spec.owner, "action": "none",
                    "budget": spec.name, "threshold": f"{threshold:g}"},
            annotations={
                "percent_used": round(pct, 2), "spent_usd": round(spent, 6),
                "limit_usd": spec.limit_usd, "period": period_key,
                "period_ends_local": end.isoformat(),
                "projected_exhaustion": format_rfc3339(eta) if eta else None,
                "projected_exhaustion_local": eta.astimezone(view.tz).isoformat() if eta
                else None, "owner": spec.owner, "enforcement": spec.enforcement,
            },
            how_to_silence=f"spendfuse silence add --matcher 'budget=\"{spec.name}\"' --for 1d "
            "--author you --comment why",
        )  # fmt: skip
