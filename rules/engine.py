"""The decision engine: every rule over one event, with per-use-case state as plain data.

``engine.process(event, state)`` is the single entry point both ``spendfuse replay`` and the Faust
worker call. ``state`` is the use case's JSON-able dict (a Faust table value in the worker, a dict
entry in replay); the engine mutates it in place, so both paths reach the same decisions.

State is keyed by rule name (``state[rule.name]``) plus ``state["__aggregates__"]``, so swapping
the rule set (a reload) keeps every surviving rule's pending/firing state. Tenant budgets and
tenant rules run in :class:`TenantEngine` over a tenant-keyed state (a second stage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from spendfuse.rules.actions import Scope
from spendfuse.rules.anomaly import AnomalyConfig, AnomalyRule
from spendfuse.rules.budgets import BudgetEvaluator
from spendfuse.rules.conditions import EvalContext
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.declarative import DeclarativeRule, event_labels, event_scope
from spendfuse.rules.metrics.aggregates import AggregateView, update_aggregates
from spendfuse.rules.metrics.baselines import (
    BaselineProvider,
    RollingMeanBaseline,
    ScoreProvider,
    ZScoreFromHourly,
)
from spendfuse.rules.model import BudgetSpec
from spendfuse.rules.ruleset import RuleSet
from spendfuse.rules.spend_limit import SpendLimitConfig, SpendLimitRule
from spendfuse.schemas.common import RiskTier, to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent

AGGREGATES_KEY = "__aggregates__"
_TIER_ORDER = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]


class Rule(Protocol):
    name: str

    def evaluate_one(self, event: CostEvent, state: dict[str, Any]) -> Decisions: ...


@dataclass(slots=True)
class CompiledRules:
    """An immutable snapshot of a rule set; swapped as a whole on reload."""

    ruleset: RuleSet
    per_use_case: list[DeclarativeRule] = field(default_factory=list)
    per_tenant: list[DeclarativeRule] = field(default_factory=list)

    @classmethod
    def build(cls, ruleset: RuleSet) -> CompiledRules:
        return cls(ruleset, [DeclarativeRule(r) for r in ruleset.enabled_rules("use_case")],
                   [DeclarativeRule(r) for r in ruleset.enabled_rules("tenant")])  # fmt: skip


class _Stage:
    """What both stages share: the rule snapshot, baselines and the evaluation loop."""

    def __init__(self, ruleset: RuleSet | None = None, *,
                 baselines: BaselineProvider | None = None,
                 scores: ScoreProvider | None = None) -> None:  # fmt: skip
        self.compiled = CompiledRules.build(ruleset or RuleSet())
        self.baselines = baselines or RollingMeanBaseline()
        self.scores = scores or ZScoreFromHourly()

    @property
    def ruleset(self) -> RuleSet:
        return self.compiled.ruleset

    def swap(self, ruleset: RuleSet) -> None:
        """Replace the rule set atomically (one reference assignment); state is kept."""
        self.compiled = CompiledRules.build(ruleset)

    def _run(self, event: CostEvent, state: dict[str, Any], rules: list[DeclarativeRule],
             budgets: list[tuple[str, BudgetSpec]], scope: Scope, compiled: CompiledRules,
             agg_key: str = AGGREGATES_KEY) -> Decisions:  # fmt: skip
        out = Decisions()
        if not rules and not budgets:
            return out
        tenant = compiled.ruleset.tenant(event.tenant_id)
        view = update_aggregates(state.setdefault(agg_key, {}), event,
                                 compiled.ruleset.tz(event.tenant_id))  # fmt: skip
        ctx = EvalContext(view, self.baselines, self.scores, _budget_lookup(budgets, event),
                          event_labels(event), to_epoch_ms(event.event_time))  # fmt: skip
        for rule in rules:
            got = rule.evaluate_one(event, state.setdefault(rule.name, {}), ctx, tenant, scope)
            if got:
                out.extend(got)
        for kind, spec in budgets:
            evaluator = BudgetEvaluator(spec, kind)
            out.extend(evaluator.evaluate_one(view, state.setdefault(evaluator.name, {}), scope))
        return out

    def _run_batch(self, events: Sequence[CostEvent], state: dict[str, Any],
                   rules: list[DeclarativeRule], budgets: list[tuple[str, BudgetSpec]],
                   scope_of: Callable[[CostEvent], Scope], compiled: CompiledRules,
                   agg_key: str = AGGREGATES_KEY) -> Decisions:  # fmt: skip
        """Several events of one key (one record's worth): aggregate each, decide per batch.

        Rules that read the event itself (``window: event``/``trace``) are evaluated at every
        event, as in :meth:`_run`. Window rules and budgets are evaluated once per clock minute
        the batch spans (at the last event of each minute, so a 1-minute window is never skipped)
        and otherwise once at its end, at the last event whose labels each rule's scope matches.
        Windowed sums only grow within a minute, so a threshold crossed mid-batch still holds at
        the end; what batching saves is evaluating every window rule at every event.
        """
        out = Decisions()
        if not rules and not budgets:
            return out
        first = events[0]
        tenant = compiled.ruleset.tenant(first.tenant_id)
        tz = compiled.ruleset.tz(first.tenant_id)
        agg = state.setdefault(agg_key, {})
        per_event = [r for r in rules if r.per_event]
        windowed = [r for r in rules if not r.per_event]
        # the latest event (and its view) per distinct label set since the last evaluation
        recent: dict[tuple[tuple[str, str], ...], _Seen] = {}
        scopes: dict[tuple[tuple[str, str], ...], Scope] = {}
        minute = -1
        for event in events:
            ts_ms = to_epoch_ms(event.event_time)
            if recent and ts_ms // 60_000 != minute:
                out.extend(self._decide_windows(recent, state, windowed, budgets, scope_of,
                                                tenant))  # fmt: skip
                recent.clear()
            minute = ts_ms // 60_000
            view = update_aggregates(agg, event, tz)
            labels = event_labels(event)
            label_key = tuple(labels.items())
            seen = _Seen(event, labels, view, ts_ms, scopes.get(label_key))
            if seen.scope is None:  # a scope is a function of the labels: one per label set
                seen.scope = scopes[label_key] = scope_of(event)
            if per_event:
                ctx = seen.context(self, budgets)
                for rule in per_event:
                    got = rule.evaluate_one(event, state.setdefault(rule.name, {}), ctx, tenant,
                                            seen.scope)  # fmt: skip
                    if got:
                        out.extend(got)
            recent.pop(label_key, None)
            recent[label_key] = seen
        out.extend(self._decide_windows(recent, state, windowed, budgets, scope_of, tenant))
        return out

    def _decide_windows(self, recent: dict[Any, _Seen], state: dict[str, Any],
                        rules: list[DeclarativeRule], budgets: list[tuple[str, BudgetSpec]],
                        scope_of: Callable[[CostEvent], Scope],
                        tenant: Any) -> Decisions:  # fmt: skip
        out = Decisions()
        latest_first = list(reversed(recent.values()))
        last = latest_first[0]
        contexts: dict[int, EvalContext] = {}
        for rule in rules:
            seen = next((s for s in latest_first if rule.applies_to(s.labels)), None)
            if seen is None:
                continue
            ctx = contexts.get(id(seen))
            if ctx is None:
                ctx = contexts[id(seen)] = seen.context(self, budgets)
            got = rule.evaluate_one(seen.event, state.setdefault(rule.name, {}), ctx, tenant,
                                    seen.scope or scope_of(seen.event))  # fmt: skip
            if got:
                out.extend(got)
        scope = last.scope or scope_of(last.event)
        for kind, spec in budgets:
            evaluator = BudgetEvaluator(spec, kind)
            out.extend(evaluator.evaluate_one(last.view, state.setdefault(evaluator.name, {}),
                                              scope))  # fmt: skip
        return out


@dataclass(slots=True)
class _Seen:
    event: CostEvent
    labels: dict[str, str]
    view: AggregateView
    ts_ms: int
    scope: Scope | None = None

    def context(self, stage: _Stage, budgets: list[tuple[str, BudgetSpec]]) -> EvalContext:
        lookup = _budget_lookup(budgets, self.event)
        return EvalContext(self.view, stage.baselines, stage.scores, lookup, self.labels,
                           self.ts_ms)  # fmt: skip


def _budget_lookup(
    budgets: list[tuple[str, BudgetSpec]], event: CostEvent
) -> Callable[[str, str], BudgetSpec | None]:
    def lookup(kind: str, period: str) -> BudgetSpec | None:
        for k, spec in budgets:
            env_ok = spec.environment is None or spec.environment is event.environment
            if k == kind and spec.period == period and env_ok:
                return spec
        return None

    return lookup


class Engine(_Stage):
    """Per-use-case stage: built-in rules (the spend-rate limit), rule files, use-case budgets."""

    def __init__(self, rules: list[Rule] | None = None, ruleset: RuleSet | None = None, *,
                 baselines: BaselineProvider | None = None,
                 scores: ScoreProvider | None = None) -> None:  # fmt: skip
        super().__init__(ruleset, baselines=baselines, scores=scores)
        self.rules = list(rules or [])

    @classmethod
    def default(cls, spend_limit: SpendLimitConfig | None = None, *,
                rules_dir: Path | None = None, default_pack: bool = True,
                anomaly: AnomalyConfig | None = None) -> Engine:  # fmt: skip
        """The default pack (plus ``rules_dir`` on top), the built-in spend-rate rule and the
        spend anomaly watches (seasonal baselines per use case)."""
        from spendfuse.rules.loader import load_rules

        builtin: list[Rule] = [SpendLimitRule(spend_limit), AnomalyRule(anomaly)]
        return cls(builtin, load_rules(rules_dir, default_pack))

    @classmethod
    def from_rules_dir(cls, path: Path, spend_limit: SpendLimitConfig | None = None, *,
                       default_pack: bool = False) -> Engine:  # fmt: skip
        from spendfuse.rules.loader import load_rules

        builtin: list[Rule] = [SpendLimitRule(spend_limit)] if spend_limit else []
        return cls(builtin, load_rules(path, default_pack))

    def process(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        compiled = self.compiled  # one snapshot for the whole event, even across a reload
        out = Decisions()
        for rule in self.rules:
            out.extend(rule.evaluate_one(event, state.setdefault(rule.name, {})))
        budgets = self._budgets(compiled, event)
        out.extend(self._run(event, state, compiled.per_use_case, budgets, event_scope(event),
                             compiled))  # fmt: skip
        return out

    def process_batch(self, events: Sequence[CostEvent], state: dict[str, Any]) -> Decisions:
        """Several events of one use case, in order (one record's worth); see ``_run_batch``.

        One event is exactly :meth:`process`. The built-in rules see every event.
        """
        if len(events) == 1:
            return self.process(events[0], state)
        compiled = self.compiled
        out = Decisions()
        for event in events:
            for rule in self.rules:
                out.extend(rule.evaluate_one(event, state.setdefault(rule.name, {})))
        budgets = self._budgets(compiled, events[-1])
        out.extend(self._run_batch(events, state, compiled.per_use_case, budgets, event_scope,
                                   compiled))  # fmt: skip
        return out

    @staticmethod
    def _budgets(compiled: CompiledRules, event: CostEvent) -> list[tuple[str, BudgetSpec]]:
        rs = compiled.ruleset
        budgets = [("budget", b) for b in rs.budgets_for(event.tenant_id, event.use_case_id)]
        budgets += [("quota", q) for q in rs.budgets_for(event.tenant_id, event.use_case_id,
                                                         "quota")]  # fmt: skip
        return budgets


class TenantEngine(_Stage):
    """Tenant stage: tenant-wide budgets, quotas and ``per: tenant`` rules over tenant state.

    A budget or rule limited to an environment (a sandbox quota) is measured on that
    environment's spend only: its own aggregates, ``__aggregates__@<environment>``.

    The guardrail sees the *riskiest* tier the tenant has shown, so a tenant-wide action never
    degrades a tenant that runs any medium/high/critical-risk use case.
    """

    def process(self, event: CostEvent, tenant_state: dict[str, Any]) -> Decisions:
        compiled = self.compiled
        rs = compiled.ruleset
        budgets = [("budget", b) for b in rs.budgets_for(event.tenant_id, None)]
        budgets += [("quota", q) for q in rs.budgets_for(event.tenant_id, None, "quota")]
        seen = tenant_state.get("max_risk_tier", RiskTier.LOW.value)
        riskiest = max(RiskTier(seen), event.risk_tier, key=_TIER_ORDER.index)
        tenant_state["max_risk_tier"] = riskiest.value
        scope = event_scope(event)
        scope.risk_tier, scope.use_case_id = riskiest, "*"
        env, labels = event.environment, event_labels(event)
        whole = [r for r in compiled.per_tenant if r.spec.scope.environment is None]
        by_env = [r for r in compiled.per_tenant
                  if r.spec.scope.environment is not None and r.applies_to(labels)]
        out = self._run(event, tenant_state, whole,
                        [b for b in budgets if b[1].environment is None], scope, compiled)
        out.extend(self._run(event, tenant_state, by_env,
                             [b for b in budgets if b[1].environment is env], scope, compiled,
                             f"{AGGREGATES_KEY}@{env.value}"))  # fmt: skip
        return out

    def process_batch(self, events: Sequence[CostEvent], tenant_state: dict[str, Any]
                      ) -> Decisions:  # fmt: skip
        """Several accepted events of one tenant, in order; one event is :meth:`process`."""
        if len(events) == 1:
            return self.process(events[0], tenant_state)
        compiled = self.compiled
        rs = compiled.ruleset
        tenant_id = events[0].tenant_id
        budgets = [("budget", b) for b in rs.budgets_for(tenant_id, None)]
        budgets += [("quota", q) for q in rs.budgets_for(tenant_id, None, "quota")]
        riskiest = RiskTier(tenant_state.get("max_risk_tier", RiskTier.LOW.value))
        for event in events:
            riskiest = max(riskiest, event.risk_tier, key=_TIER_ORDER.index)
        tenant_state["max_risk_tier"] = riskiest.value

        def scope_of(event: CostEvent) -> Scope:
            scope = event_scope(event)
            scope.risk_tier, scope.use_case_id = riskiest, "*"
            return scope

        whole = [r for r in compiled.per_tenant if r.spec.scope.environment is None]
        out = self._run_batch(events, tenant_state, whole,
                              [b for b in budgets if b[1].environment is None], scope_of, compiled)
        by_env: dict[Any, list[CostEvent]] = {}
        for event in events:
            by_env.setdefault(event.environment, []).append(event)
        for env, env_events in by_env.items():
            labels = event_labels(env_events[-1])
            rules = [r for r in compiled.per_tenant
                     if r.spec.scope.environment is not None and r.applies_to(labels)]
            out.extend(self._run_batch(env_events, tenant_state, rules,
                                       [b for b in budgets if b[1].environment is env], scope_of,
                                       compiled, f"{AGGREGATES_KEY}@{env.value}"))  # fmt: skip
        return out

    @property
    def active(self) -> bool:
        """Whether the tenant stage has anything to do (else the worker may skip it)."""
        rs = self.ruleset
        return bool(self.compiled.per_tenant or any(b.use_case_id is None for b in
                    [*rs.budgets.values(), *rs.quotas.values()]))  # fmt: skip


__all__ = ["AggregateView", "Engine", "Rule", "TenantEngine"]
