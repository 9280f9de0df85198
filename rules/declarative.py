"""One rule from a rule file, compiled: scope → condition → ``for`` → fire / resolve.

State (``state[rule.name]``, plain data): ``pending_ms`` while the condition holds but its
``for`` has not elapsed, then ``fired_ms`` while firing, plus the targets of the commands it
issued so that clearing can restore exactly those. A rule fires once and resolves once per
incident, never once per event.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.rules.actions import Scope, plan_commands, restore_command
from spendfuse.rules.conditions import EvalContext, Verdict, evaluate_condition
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.ids import fingerprint, stable_id
from spendfuse.rules.matchers import Matcher, any_of, matches_all
from spendfuse.rules.model import AlertAction, RuleSpec, TenantSpec
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.common import Component, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SCOPE_LABELS = ("tenant_id", "use_case_id", "environment", "risk_tier", "model", "tool",
                 "route_policy", "component")  # fmt: skip


def event_labels(event: CostEvent) -> dict[str, str]:
    """The labels scopes and matchers see; only declared event fields, never extras."""
    tool = event.model_or_service if event.component is Component.TOOL_CALL else None
    raw = {
        "tenant_id": event.tenant_id, "use_case_id": event.use_case_id,
        "environment": event.environment.value, "risk_tier": event.risk_tier.value,
        "component": event.component.value, "model": event.model_or_service, "tool": tool,
        "route_policy": event.route_policy_version, "provider": event.provider,
        "workflow_step": event.workflow_step, "business_unit": event.business_unit,
        "cost_center": event.cost_center, "user_role": event.user_role,
        "prompt_version": event.prompt_version, "cache_status": event.cache_status,
    }  # fmt: skip
    return {k: v for k, v in raw.items() if v is not None}


def event_scope(event: CostEvent) -> Scope:
    labels = event_labels(event)
    return Scope(event.tenant_id, event.use_case_id, event.risk_tier, labels.get("model"),
                 event.prompt_version, labels.get("tool"), event.route_policy_version)


def is_business_day(day: date, tenant: TenantSpec) -> bool:
    return _DAYS[day.weekday()] in tenant.business_days and day not in tenant.holidays


def business_days_between(start: date, end: date, tenant: TenantSpec) -> int:
    """Business days in ``[start, end)``."""
    days, count = (end - start).days, 0
    for offset in range(max(days, 0)):
        if is_business_day(start + timedelta(days=offset), tenant):
            count += 1
    return count


def _reads_one_event(cond: Any) -> bool:
    """Whether a condition reads the current event itself (``window: event`` or ``trace``)."""
    if hasattr(cond, "conditions"):
        return any(_reads_one_event(c) for c in cond.conditions)
    return getattr(cond, "window", None) in ("event", "trace")


class DeclarativeRule:
    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.name = spec.name
        self._matchers = self._scope_matchers()
        #: evaluated at every event of a batch; other rules once per batch and clock minute
        self.per_event = _reads_one_event(spec.condition)

    def _scope_matchers(self) -> list[Matcher]:
        scope = self.spec.scope
        out = list(scope.parsed_matchers())
        for label in _SCOPE_LABELS:
            value = getattr(scope, label)
            if value is None:
                continue
            values = value if isinstance(value, list) else [value]
            out.append(any_of(label, (str(getattr(v, "value", v)) for v in values)))  # literals
        return out

    def applies_to(self, labels: dict[str, str]) -> bool:
        return not self._matchers or matches_all(self._matchers, labels)

    def evaluate_one(self, event: CostEvent, state: dict[str, Any], ctx: EvalContext,
                     tenant: TenantSpec, scope: Scope) -> Decisions:  # fmt: skip
        if not self.applies_to(ctx.labels):
            return Decisions()
        verdict = evaluate_condition(self.spec.condition, ctx)
        now_ms = ctx.now_ms
        if not verdict.holds:
            state.pop("pending_ms", None)
            if "fired_ms" not in state:
                return Decisions()
            held_ms = state.get("held_ms", state["fired_ms"])
            if now_ms - held_ms < self.spec.keep_firing_for.seconds * 1000:
                return Decisions()  # keep firing a while: one blip under is no recovery
            return self._resolve(event, state, verdict, scope)
        if "fired_ms" in state:
            state["held_ms"] = now_ms
            return Decisions()
        if not self._gate_open(event.event_time, tenant):
            return Decisions()
        state.setdefault("pending_ms", now_ms)
        if not self._for_elapsed(state["pending_ms"], event.event_time, tenant):
            return Decisions()
        alert_and_commands = self._fire(event, state, verdict, scope)
        self._notify(alert_and_commands.alerts[0], ctx)
        return alert_and_commands

    def _notify(self, alert: Alert, ctx: EvalContext) -> None:
        """``notify: [owner]`` names the owner of the budget in scope (label ``owner``, so a
        route can send it to the owner's channel); other entries are receivers as written."""
        wanted = [n for a in self.spec.actions if isinstance(a, AlertAction) for n in a.notify]
        if not wanted:
            return
        budgets = [ctx.budget("budget", p) for p in ("day", "month")]
        owners = [b.owner for b in budgets if b is not None]
        resolved = [o for n in wanted for o in (owners if n == "owner" else [n])]
        alert.annotations["notify"] = resolved
        if owners:
            alert.labels["owner"] = owners[0]

    def _gate_open(self, at: datetime, tenant: TenantSpec) -> bool:
        when = self.spec.when
        if when is None:
            return True
        local = at.astimezone(ctx_tz(tenant))
        if when.business_days_only and not is_business_day(local.date(), tenant):
            return False
        if when.after is not None and local.time() < when.after:
            return False
        return not (when.before is not None and local.time() >= when.before)

    def _for_elapsed(self, pending_ms: int, at: datetime, tenant: TenantSpec) -> bool:
        dur = self.spec.for_
        if dur is None:
            return True
        if dur.business_days is not None:
            tz = ctx_tz(tenant)
            start = datetime.fromtimestamp(pending_ms / 1000, tz=UTC).astimezone(tz).date()
            return business_days_between(start, at.astimezone(tz).date(), tenant) \
                >= dur.business_days  # fmt: skip
        return to_epoch_ms(at) - pending_ms >= dur.seconds * 1000

    def fingerprint(self, scope: Scope) -> str:
        uc = "*" if self.spec.per == "tenant" else scope.use_case_id
        return fingerprint(self.name, scope.tenant_id, uc)

    def _evidence(self, verdict: Verdict) -> Evidence:
        return Evidence(metric=verdict.metric or self.name, value=round(verdict.value or 0.0, 6),
                        threshold=verdict.threshold, baseline=verdict.baseline)  # fmt: skip

    def _fire(self, event: CostEvent, state: dict[str, Any], verdict: Verdict,
              scope: Scope) -> Decisions:  # fmt: skip
        spec, fp, at = self.spec, self.fingerprint(scope), event.event_time
        evidence = self._evidence(verdict)
        acts = [a for a in spec.actions if not isinstance(a, AlertAction)]
        planned = plan_commands(self.name, acts, scope, risk_protection=spec.risk_protection,
                                at=at, fingerprint=fp, evidence=evidence,
                                reason=self._summary(event, verdict))  # fmt: skip
        fired_ms = to_epoch_ms(at)
        state.update(fired_ms=fired_ms, issued=[[c.target.type.value, c.target.id]
                                                for c in planned.commands],
                     mode=acts[0].mode if acts else "enforce")  # fmt: skip
        state.pop("pending_ms", None)
        alert = self._alert(event, scope, fp, fired_ms, "firing", verdict)
        alert.actions_taken = [c.command_id for c in planned.commands]
        alert.guardrail_held = planned.held
        enforced = [c for c in planned.commands if c.mode == "enforce"]
        alert.labels["action"] = enforced[0].kind.value if enforced else "none"
        if any(c.mode == "shadow" for c in planned.commands):
            alert.annotations["shadow_commands"] = [c.command_id for c in planned.commands
                                                    if c.mode == "shadow"]  # fmt: skip
        return Decisions(alerts=[alert], commands=planned.commands)

    def _resolve(self, event: CostEvent, state: dict[str, Any], verdict: Verdict,
                 scope: Scope) -> Decisions:  # fmt: skip
        fp, fired_ms = self.fingerprint(scope), state.pop("fired_ms")
        alert = self._alert(event, scope, fp, fired_ms, "resolved", verdict)
        alert.resolved_at = event.event_time
        out = Decisions(alerts=[alert])
        restores = [a for a in self.spec.actions if getattr(a, "restore_on_clear", False)]
        for issued in state.pop("issued", []) if restores else []:
            out.commands.append(restore_command(self.name, issued, state.get("mode", "enforce"),
                                                scope, event.event_time, fp,
                                                self._evidence(verdict)))  # fmt: skip
        for key in ("issued", "mode", "held_ms"):
            state.pop(key, None)
        return out

    def _alert(self, event: CostEvent, scope: Scope, fp: str, fired_ms: int, status: str,
               verdict: Verdict) -> Alert:  # fmt: skip
        labels = {"risk_tier": event.risk_tier.value, "environment": event.environment.value,
                  "per": self.spec.per, **self.spec.labels}  # fmt: skip
        return Alert(
            alert_id=stable_id(fp, fired_ms), fingerprint=fp, rule=self.name, status=status,  # type: ignore[arg-type]
            severity=self.spec.severity, tenant_id=scope.tenant_id,
            use_case_id="*" if self.spec.per == "tenant" else scope.use_case_id,
            summary=self._summary(event, verdict) if status == "firing"
            else f"{self.name} cleared for {scope.use_case_id}",
            evidence=self._evidence(verdict),
            fired_at=datetime.fromtimestamp(fired_ms / 1000, tz=UTC), labels=labels,
            how_to_silence=f"spendfuse silence add --matcher 'fingerprint=\"{fp}\"' --for 1h "
            "--author you --comment why",
            annotations={k: v for k, v in self.spec.annotations.items() if k != "summary"},
        )  # fmt: skip

    def _summary(self, event: CostEvent, verdict: Verdict) -> str:
        template = self.spec.annotations.get("summary") or (
            "{rule} on {use_case_id}: {metric} = {value:.4g} (threshold {threshold})")
        values: dict[str, Any] = defaultdict(lambda: "?", rule=self.name, metric=verdict.metric,
            tenant_id=event.tenant_id, use_case_id=event.use_case_id,
            value=verdict.value or 0.0, threshold=verdict.threshold,
            baseline=verdict.baseline or 0.0, ratio=verdict.value or 0.0)  # fmt: skip
        try:
            return template.format_map(values)
        except (ValueError, TypeError, KeyError):
            return f"{self.name} on {event.use_case_id}: {verdict.metric} = {verdict.value}"


def ctx_tz(tenant: TenantSpec) -> ZoneInfo:
    return ZoneInfo(tenant.time_zone)
