"""The decision engine: every rule of a stage over one key's events, state as plain data.

One loop for every rule kind. For each event, each rule whose scope matches it measures the
event in its *own* aggregates (the events its scope matches, grouped by its ``group_by``
labels), or in the key's shared aggregates when it neither filters nor groups. A rule kind only
returns verdicts; :mod:`~spendfuse.rules.lifecycle` turns them into fire / refresh / resolve,
and :mod:`~spendfuse.rules.actions` builds every alert and command, through the guardrail.

``state`` is one key's JSON-able dict (a Faust table value in the worker, a dict entry in
replay): ``__aggregates__`` (shared aggregates), ``__agg__`` (per scope signature and group),
``__risk__`` (the riskiest tier the key has shown), and per rule name its instances. Swapping
the rule set (a reload) keeps every surviving rule's state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from spendfuse.detectors.spend_signals import add_event
from spendfuse.rules import lifecycle
from spendfuse.rules.actions import RuleMeta, fingerprint
from spendfuse.rules.actions import fire as build_fire
from spendfuse.rules.actions import refresh as build_refresh
from spendfuse.rules.actions import resolve as build_resolve
from spendfuse.rules.budgets import budget_metas, budget_verdicts
from spendfuse.rules.can_hold import CanHold, budget_can_hold, can_hold
from spendfuse.rules.conditions import EvalContext, Verdict, evaluate_condition
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.matchers import Matcher, matches_all
from spendfuse.rules.metrics.aggregates import (
    ALL_PARTS,
    PERIOD_PARTS,
    WINDOW_PARTS,
    AggregateView,
    EventFacts,
    update_aggregates,
)
from spendfuse.rules.metrics.baselines import (
    BaselineProvider,
    RollingMeanBaseline,
    ScoreProvider,
)
from spendfuse.rules.metrics.catalog import METRICS
from spendfuse.rules.metrics.detector_scores import DetectorScores
from spendfuse.rules.model import (
    AlertAction,
    AnomalyCondition,
    BudgetPercentCondition,
    BudgetSpec,
    DegradeAction,
    DetectorScoreCondition,
    KillSwitchAction,
    RatioToBaselineCondition,
    RuleSpec,
    SessionOutlierCondition,
    TenantSpec,
)
from spendfuse.rules.ruleset import RuleSet
from spendfuse.rules.scope import LABEL_ATTRIBUTES, Scope, event_labels, riskier
from spendfuse.rules.screens import PassBounds, Screen, budget_screen, screen
from spendfuse.rules.sessions import session_verdicts
from spendfuse.rules.signals import anomaly_verdicts, track_loop
from spendfuse.rules.when import business_days_between, gate_open
from spendfuse.schemas.alert import TraceContribution
from spendfuse.schemas.common import RiskTier
from spendfuse.schemas.cost_event import CostEvent

log = logging.getLogger(__name__)

AGGREGATES_KEY = "__aggregates__"
GROUPS_KEY = "__agg__"
RISK_KEY = "__risk__"
OVER_KEY = "__over_groups__"
BUCKETS_KEY = "__buckets__"
ERRORS_KEY = "__rule_errors__"
_SCREEN_FROM = 2  # events in a pass from which rules are screened once for the whole pass
_SHARED: tuple[str, tuple[str, ...]] = ("", ())  # the key's own aggregates, as a view key
_RISK_TIERS = {tier.value: tier for tier in RiskTier}
_SCOPE_FIELDS = (
    "tenant_id",
    "use_case_id",
    "environment",
    "risk_tier",
    "model",
    "tool",
    "route_policy",
    "component",
)


def _reads_one_event(cond: Any) -> bool:
    """Whether a condition goes first at each event: it reads the event itself (``event`` /
    ``trace``), is an anomaly watch or session outlier, or only reads the clock minute. Every
    rule is evaluated at every event; this only fixes the order of one event's decisions
    (these first, then window rules and budgets)."""
    if isinstance(cond, AnomalyCondition | SessionOutlierCondition):
        return True
    if hasattr(cond, "conditions"):
        parts = cond.conditions
        return all(_reads_one_minute(c) for c in parts) or any(_reads_one_event(c) for c in parts)
    return getattr(cond, "window", None) in ("event", "trace") or _reads_one_minute(cond)


def _reads_one_minute(cond: Any) -> bool:
    if hasattr(cond, "conditions"):
        return all(_reads_one_minute(c) for c in cond.conditions)
    simple = not isinstance(cond, RatioToBaselineCondition | DetectorScoreCondition)
    return simple and getattr(cond, "window", None) in ("event", "trace", "1m")


@dataclass(frozen=True, slots=True)
class OneOf:
    """A scope field: the label equals one of the values, compared as literals (never a regex,
    so ``use_case_id: "bot(v2"`` means exactly that use case)."""

    name: str
    values: frozenset[str]

    def matches(self, labels: dict[str, str]) -> bool:
        return labels.get(self.name, "") in self.values

    def __str__(self) -> str:
        return f"{self.name} in {sorted(self.values)}"


def _scope_matchers(spec_scope: Any) -> list[Matcher | OneOf]:
    """The rule scope as matchers: its fields (literals) and its ``matchers`` (regexes)."""
    out: list[Matcher | OneOf] = list(spec_scope.parsed_matchers())
    for label in _SCOPE_FIELDS:
        value = getattr(spec_scope, label)
        if value is None:
            continue
        values = value if isinstance(value, list) else [value]
        out.append(OneOf(label, frozenset(str(getattr(v, "value", v)) for v in values)))
    return out


@dataclass(slots=True)
class CompiledRule:
    """One rule, of any kind, ready to run: its scope, groups, timing and builder metadata."""

    name: str
    meta: RuleMeta
    matchers: list[Matcher | OneOf]
    sig: str  # "" = the key's shared aggregates; else its own, per group
    group_by: tuple[str, ...] = ()
    max_groups: int = 1000
    timing: lifecycle.Timing = field(default_factory=lambda: lifecycle.Timing())
    per_event: bool = False
    spec: RuleSpec | None = None
    budget: tuple[str, BudgetSpec] | None = None
    exhausted_meta: RuleMeta | None = None
    notify: tuple[str, ...] = ()
    needs: frozenset[str] = ALL_PARTS  # the parts of its aggregates its conditions read
    anomaly: AnomalyCondition | None = None  # an anomaly watch: decides only as buckets close
    bucket_s: int = 0
    carry: int = 0  # an anomaly watch's carry_buckets(), worked out once
    can_hold: CanHold | None = None  # a cheap test that its condition cannot hold (can_hold.py)
    screen: Screen | None = None  # the same for a whole pass of events (screens.py)

    def applies(self, labels: dict[str, str]) -> bool:
        return not self.matchers or matches_all(self.matchers, labels)  # type: ignore[arg-type]

    def group_of(self, labels: dict[str, str]) -> tuple[str, ...]:
        if not self.group_by:
            return ()
        return tuple(labels.get(k, "") for k in self.group_by)

    def meta_for(self, verdict: Verdict) -> RuleMeta:
        hard = verdict.instance != "forecast" and (verdict.threshold or 0) >= 100
        if self.exhausted_meta is not None and hard:
            return self.exhausted_meta
        return self.meta


def _bucket_tag(cond: AnomalyCondition) -> str:
    """What watches sharing one bucket accumulator must agree on besides size and scope."""
    carry = cond.carry_buckets()
    return f"{cond.min_calls}+{carry}" if carry else str(cond.min_calls)


def _timing(spec: RuleSpec) -> lifecycle.Timing:
    acts = [a for a in spec.actions if isinstance(a, DegradeAction | KillSwitchAction)]
    refresh = min((a.expires_in.seconds for a in acts), default=0) * 1000 // 2
    for_ms = spec.for_.seconds * 1000 if spec.for_ is not None else 0
    return lifecycle.Timing(for_ms, spec.keep_firing_for.seconds * 1000, refresh)


def _signature(matchers: list[Matcher | OneOf], group_by: Sequence[str], stage_key: str) -> str:
    """Rules that filter the same way share aggregates; a filter on the stage's own key (the
    use case in the use-case stage) filters nothing within one key's state."""
    parts = sorted(str(m) for m in matchers if m.name != stage_key)
    if not parts and not group_by:
        return ""
    return "|".join(parts) + "#" + ",".join(group_by)


def _parts_read(cond: Any) -> set[str]:
    """The parts of the aggregates a condition reads (its rule's own aggregates keep only
    those: a minute-window rule scoped to some steps keeps a minute, not a week of hours)."""
    if isinstance(cond, AnomalyCondition | SessionOutlierCondition):
        return set()  # it keeps its own buckets, or sessions
    if hasattr(cond, "conditions"):
        return set().union(*(_parts_read(c) for c in cond.conditions))
    if isinstance(cond, BudgetPercentCondition):
        return {PERIOD_PARTS[cond.period]}
    parts = set(WINDOW_PARTS[cond.window])
    if isinstance(cond, RatioToBaselineCondition | DetectorScoreCondition):
        parts.add("h")
    metric = METRICS[cond.metric]
    if metric.kind == "p95" and cond.window != "1m":
        parts.add("h")
    if {"traces", "outcomes"} & {metric.numerator, metric.denominator}:
        parts.add("ids")
    return parts


def _one_environment(value: Any) -> str | None:
    values = value if isinstance(value, list) else [value] if value is not None else []
    return str(getattr(values[0], "value", values[0])) if len(values) == 1 else None


def compile_rule(spec: RuleSpec, stage_key: str) -> CompiledRule:
    matchers = _scope_matchers(spec.scope)
    cmd_actions = tuple(a for a in spec.actions if isinstance(a, DegradeAction | KillSwitchAction))
    meta = RuleMeta(
        name=spec.name,
        severity=spec.severity,
        actions=cmd_actions,
        risk_protection=spec.risk_protection,
        per=spec.per,
        labels=dict(spec.labels),
        annotations=dict(spec.annotations),
        summary=spec.annotations.get("summary"),
        environment=_one_environment(spec.scope.environment),
    )
    notify = tuple(n for a in spec.actions if isinstance(a, AlertAction) for n in a.notify)
    anomaly = spec.condition if isinstance(spec.condition, AnomalyCondition) else None
    return CompiledRule(
        name=spec.name,
        meta=meta,
        matchers=matchers,
        sig=_signature(matchers, spec.group_by, stage_key),
        group_by=tuple(spec.group_by),
        max_groups=spec.max_groups,
        timing=_timing(spec),
        per_event=_reads_one_event(spec.condition),
        spec=spec,
        notify=notify,
        needs=frozenset(_parts_read(spec.condition)),
        anomaly=anomaly,
        bucket_s=anomaly.bucket.seconds if anomaly is not None else 0,
        carry=anomaly.carry_buckets() if anomaly is not None else 0,
        can_hold=None if anomaly is not None else can_hold(spec.condition),
        screen=None if anomaly is not None or spec.group_by else screen(spec.condition),
    )


def compile_budget(kind: str, spec: BudgetSpec, stage_key: str) -> CompiledRule:
    matchers: list[Matcher | OneOf] = []
    for label, value in (
        ("environment", spec.environment),
        ("cost_center", spec.cost_center),
        ("business_unit", spec.business_unit),
        ("risk_tier", spec.risk_tier),
    ):
        if value is not None:  # a budget of one slice measures that slice's spend only
            matchers.append(OneOf(label, frozenset({str(getattr(value, "value", value))})))
    below, exhausted = budget_metas(kind, spec)
    refresh = spec.on_exhausted.expires_in.seconds * 500 if spec.on_exhausted else 0
    return CompiledRule(
        name=below.name,
        meta=below,
        matchers=matchers,
        sig=_signature(matchers, (), stage_key),
        timing=lifecycle.Timing(0, 0, refresh),
        budget=(kind, spec),
        exhausted_meta=exhausted,
        needs=frozenset({PERIOD_PARTS[spec.period]}),
        can_hold=budget_can_hold(spec),
        screen=budget_screen(spec),
    )


@dataclass(slots=True)
class CompiledRules:
    """An immutable snapshot of a rule set; swapped as a whole on reload."""

    ruleset: RuleSet
    per_use_case: list[CompiledRule] = field(default_factory=list)
    per_tenant: list[CompiledRule] = field(default_factory=list)
    _budgets: dict[tuple[str, str | None], list[CompiledRule]] = field(default_factory=dict)
    _plans: dict[tuple[str, str | None], Plan] = field(default_factory=dict)

    @classmethod
    def build(cls, ruleset: RuleSet) -> CompiledRules:
        return cls(
            ruleset,
            [compile_rule(r, "use_case_id") for r in ruleset.enabled_rules("use_case")],
            [compile_rule(r, "tenant_id") for r in ruleset.enabled_rules("tenant")],
        )

    def budgets(self, tenant_id: str, use_case_id: str | None) -> list[CompiledRule]:
        """The budgets and quotas of one use case, or (``None``) the tenant-wide ones."""
        key = (tenant_id, use_case_id)
        hit = self._budgets.get(key)
        if hit is None:
            stage_key = "use_case_id" if use_case_id else "tenant_id"
            rs = self.ruleset
            hit = [
                compile_budget(kind, b, stage_key)
                for kind in ("budget", "quota")
                for b in rs.budgets_for(tenant_id, use_case_id, kind)
            ]
            if len(self._budgets) > 100_000:
                self._budgets.clear()
            self._budgets[key] = hit
        return hit

    def plan(self, tenant_id: str, use_case_id: str | None) -> Plan:
        """What one key runs: its rules (the stage's and its budgets), in one cached object."""
        key = (tenant_id, use_case_id)
        hit = self._plans.get(key)
        if hit is None:
            budgets = self.budgets(tenant_id, use_case_id)
            stage = self.per_use_case if use_case_id is not None else self.per_tenant
            hit = Plan([*stage, *budgets], _budget_lookup(budgets))
            if len(self._plans) > 100_000:
                self._plans.clear()
            self._plans[key] = hit
        return hit


@dataclass(frozen=True, slots=True)
class RuleStep:
    """One rule as it applies to one label set, with what its per-event work needs worked out
    once (its group, the key of its aggregates, its anomaly accumulator) instead of per event."""

    rule: CompiledRule
    group: tuple[str, ...]
    gkey: str  # the group as the key of its instances and aggregates
    vkey: tuple[str, tuple[str, ...]]  # the aggregates it measures in: (signature, group)
    needs: frozenset[str]
    bkey: str  # an anomaly watch's shared bucket accumulator; "" for other rules
    lkey: str  # where the engine keeps that accumulator's loop targets for this event


@dataclass(slots=True)
class Plan:
    """The rules one key runs, which aggregates each scope signature keeps, and which rules
    apply to a label set (cached: a use case has few distinct label sets)."""

    rules: list[CompiledRule]
    budget_lookup: Callable[[str, str, CostEvent], BudgetSpec | None]
    needs: dict[str, frozenset[str]] = field(default_factory=dict)
    uses_shared: bool = False
    screened: list[CompiledRule] = field(default_factory=list)  # the rules with a pass screen
    _steps: dict[tuple[tuple[str, str], ...], list[RuleStep]] = field(default_factory=dict)
    _key_of: Callable[[CostEvent], Any] = lambda event: ()
    _by_event: dict[tuple[str | None, ...], list[RuleStep]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        needs: dict[str, set[str]] = {}
        read: set[str] = set()
        for rule in self.rules:
            needs.setdefault(rule.sig, set()).update(rule.needs)
            read.update(m.name for m in rule.matchers)
            read.update(rule.group_by)
        self.needs = {sig: frozenset(parts) for sig, parts in needs.items()}
        self.uses_shared = "" in self.needs
        self.screened = [rule for rule in self.rules if rule.screen is not None]
        attrs = sorted({a for name in read for a in LABEL_ATTRIBUTES.get(name, ())})
        if attrs:  # a name no event carries (LABEL_ATTRIBUTES has no entry) reads as absent
            self._key_of = attrgetter(*attrs, attrs[0])  # two names or more: always a tuple

    def applicable(self, labels: dict[str, str]) -> list[CompiledRule]:
        return [step.rule for step in self.steps(labels)]

    def steps_for(self, event: CostEvent) -> list[RuleStep]:
        """:meth:`steps` of the event's labels, cached by just the labels the rules read (a
        use case's events mostly share them, so most events build no label dict at all)."""
        key = self._key_of(event)
        hit = self._by_event.get(key)
        if hit is None:
            if len(self._by_event) > 4096:
                self._by_event.clear()
            hit = self._by_event[key] = self.steps(event_labels(event))
        return hit

    def steps(self, labels: dict[str, str]) -> list[RuleStep]:
        """The rules that apply to ``labels``, in rule order, as :class:`RuleStep`."""
        key = tuple(labels.items())
        hit = self._steps.get(key)
        if hit is None:
            if len(self._steps) > 4096:
                self._steps.clear()
            hit = self._steps[key] = [
                self._step(rule, labels) for rule in self.rules if rule.applies(labels)
            ]
        return hit

    def _step(self, rule: CompiledRule, labels: dict[str, str]) -> RuleStep:
        group = rule.group_of(labels)
        gkey = "\x1f".join(group)
        bkey = ""
        if rule.anomaly is not None:
            bkey = f"{rule.bucket_s}/{_bucket_tag(rule.anomaly)}|{rule.sig}|{gkey}"
        needs = self.needs.get(rule.sig, ALL_PARTS)
        return RuleStep(rule, group, gkey, (rule.sig, group), needs, bkey, "~" + bkey)


class _Stage:
    """What both stages share: the rule snapshot, the providers and the decision loop."""

    stage_key = "use_case_id"

    def __init__(
        self,
        ruleset: RuleSet | None = None,
        *,
        baselines: BaselineProvider | None = None,
        scores: ScoreProvider | None = None,
    ) -> None:
        self.compiled = CompiledRules.build(ruleset or RuleSet())
        self.baselines = baselines or RollingMeanBaseline()
        self._scores_override = scores
        self._scores: dict[str, ScoreProvider] = {}
        self._buckets: dict[str, list[Any]] = {}
        self._contexts: dict[int, EvalContext] = {}
        #: rule errors by rule name, counted (the metrics endpoint reads them)
        self.rule_errors: dict[str, int] = {}

    @property
    def ruleset(self) -> RuleSet:
        return self.compiled.ruleset

    def swap(self, ruleset: RuleSet) -> None:
        """Replace the rule set atomically (one reference assignment); state is kept."""
        self.compiled = CompiledRules.build(ruleset)

    def score_provider(self, spec: Any) -> ScoreProvider:
        if self._scores_override is not None:
            return self._scores_override
        key = repr(spec)
        provider = self._scores.get(key)
        if provider is None:
            provider = self._scores[key] = DetectorScores(spec)
        return provider

    # -- the loop --------------------------------------------------------------------------------
    def _decide(
        self,
        events: Sequence[CostEvent],
        state: dict[str, Any],
        plan: Plan,
        scope_of: Callable[[CostEvent, RiskTier], Scope],
        *,
        shared: bool = True,
        cuts: list[tuple[int, int]] | None = None,
    ) -> Decisions:
        """Several events of one key, in order (one record's worth).

        Every rule is evaluated at every event its scope matches, so the decisions never
        depend on how events were split into records: a record of many events decides exactly
        what the same events one per record decide (replay may batch lines, a producer may
        batch events). At each event, rules that read the event itself, its trace or the clock
        minute go first, then window rules and budgets. What keeps this cheap is the skip of
        rules whose condition cannot hold (:func:`_idle`), not fewer evaluations.
        ``shared``: keep the key's own aggregates even when no rule reads them (the use-case
        stage always does: the dashboard and the state's readers use them). ``cuts``: filled
        with how many alerts and commands were decided before each event and after the last,
        so a caller can tell which event decided what.
        """
        out = Decisions()
        if not plan.rules:
            if cuts is not None:
                cuts.extend((0, 0) for _ in range(len(events) + 1))
            return out
        first = events[0]
        rs = self.compiled.ruleset
        tenant = rs.tenant(first.tenant_id)
        tz = rs.tz(first.tenant_id)
        budget_lookup = plan.budget_lookup
        risk_value = state.get(RISK_KEY) or first.risk_tier.value
        riskiest = _RISK_TIERS.get(risk_value) or RiskTier(risk_value)
        keep_shared = shared or plan.uses_shared
        steps_of = plan.steps_for
        baselines = self.baselines
        later: list[tuple[RuleStep, AggregateView]] = []  # this event's window rules

        def evaluate(step: RuleStep, view: AggregateView) -> None:
            """One rule at the event the loop is at, unless its condition cannot hold."""
            if not _idle(step, view, state, budget_lookup, baselines):
                self._evaluate(
                    step, event, view, riskiest, scope_of, ts_ms, state, tenant, budget_lookup, out
                )

        asleep: set[str] = set()
        passed: list[EventFacts] = []
        stepped: list[list[RuleStep]] = []
        if len(events) >= _SCREEN_FROM and plan.screened:
            stepped = [steps_of(e) for e in events]
            asleep, passed = self._asleep(events, stepped, plan, state, budget_lookup, tz)
        for index, event in enumerate(events):
            if cuts is not None:
                cuts.append((len(out.alerts), len(out.commands)))
            # to_epoch_ms, once per event
            ts_ms = passed[index].ts_ms if passed else int(event.event_time.timestamp() * 1000)
            if event.risk_tier is not riskiest:
                riskiest = riskier(riskiest, event.risk_tier)
                risk_value = riskiest.value
            state[RISK_KEY] = risk_value
            steps = stepped[index] if stepped else steps_of(event)
            if not steps and not shared:
                continue
            views: dict[tuple[str, tuple[str, ...]], AggregateView | None] = {}
            # shared by every aggregate the event counts in
            facts = passed[index] if passed else EventFacts(event, ts_ms)
            if keep_shared:
                views[_SHARED] = update_aggregates(
                    state.setdefault(AGGREGATES_KEY, {}), event, tz, ALL_PARTS, ts_ms, facts
                )
            self._buckets = {}  # closed anomaly buckets of this event, per bucket state
            loopy = event.is_retry or (event.step_number or 0) > 10  # a loop guard's target?
            self._contexts = {}  # one evaluation context per view of this event
            for step in steps:
                vkey = step.vkey
                if vkey in views:
                    view = views[vkey]
                else:
                    view = views[vkey] = self._group_view(state, step, event, tz, facts)
                if view is None:
                    continue  # over the rule's group cap: counted, not measured
                if asleep and step.rule.name in asleep:
                    continue  # it cannot hold at any event of this pass (screens.py)
                if step.bkey:
                    closed = self._buckets.get(step.bkey)  # watches sharing one accumulator
                    if closed is None:
                        closed = self._closed(step, event, state, ts_ms, loopy)
                    if not closed:
                        continue  # no bucket closed: an anomaly watch has nothing to decide
                if step.rule.per_event:
                    evaluate(step, view)
                else:
                    later.append((step, view))
            for step, view in later:
                evaluate(step, view)
            later.clear()
        if cuts is not None:
            cuts.append((len(out.alerts), len(out.commands)))
        return out

    def _asleep(
        self,
        events: Sequence[CostEvent],
        stepped: list[list[RuleStep]],
        plan: Plan,
        state: dict[str, Any],
        budget_lookup: Callable[..., Any],
        tz: ZoneInfo,
    ) -> tuple[set[str], list[EventFacts]]:
        """The rules (by name) that sleep through this pass, and the events' facts if they had
        to be worked out for it. A rule sleeps when it applies to some event of the pass,
        nothing of it is pending or firing, and its screen says its condition cannot hold at
        any event of the pass. A screen that fails says "evaluate": the per-event evaluations
        then count and log the error."""
        applied: set[str] = set()
        lists: set[int] = set()
        for steps in stepped:  # a use case's events share a few cached step lists
            if id(steps) not in lists:
                lists.add(id(steps))
                applied.update(step.rule.name for step in steps)
        candidates = [r for r in plan.screened if r.name in applied and r.name not in state]
        if not candidates:
            return set(), []
        passed = [EventFacts(e, int(e.event_time.timestamp() * 1000)) for e in events]
        bounds = PassBounds(passed, tz)
        shared = state.get(AGGREGATES_KEY) or {}
        groups = state.get(GROUPS_KEY) or {}
        out: set[str] = set()
        for rule in candidates:
            agg = shared if not rule.sig else (groups.get(rule.sig) or {}).get("") or {}
            try:
                if not rule.screen(agg, bounds, budget_lookup, self.baselines):  # type: ignore[misc]
                    out.add(rule.name)
            except Exception:
                continue
        return out, passed

    def _closed(
        self,
        step: RuleStep,
        event: CostEvent,
        state: dict[str, Any],
        ts_ms: int,
        loopy: bool = True,
    ) -> list[Any]:
        """Fold ``event`` into an anomaly watch's accumulator and return the buckets it
        closes; watches of one bucket size, scope and group share one accumulator (folded once
        per event: the caller looks in ``_buckets`` first). ``loopy``: whether the event can be
        a loop guard's target (a retry, or a step past 10); else nothing to track."""
        bkey = step.bkey
        buckets = state.setdefault(BUCKETS_KEY, {}).setdefault(bkey, {})
        if loopy:
            track_loop(buckets, event)
        cond = step.rule.anomaly
        assert cond is not None
        closed = self._buckets[bkey] = add_event(
            buckets, event, step.rule.bucket_s, cond.min_calls, ts_ms, step.rule.carry
        )
        self._buckets[step.lkey] = buckets  # type: ignore[assignment]
        return closed

    def _group_view(
        self,
        state: dict[str, Any],
        step: RuleStep,
        event: CostEvent,
        tz: ZoneInfo,
        facts: EventFacts,
    ) -> AggregateView | None:
        rule = step.rule
        groups = state.setdefault(GROUPS_KEY, {}).setdefault(rule.sig, {})
        agg = groups.get(step.gkey)
        if agg is None:
            if len(groups) >= rule.max_groups:
                state[OVER_KEY] = state.get(OVER_KEY, 0) + 1
                return None
            agg = groups[step.gkey] = {}
        return update_aggregates(agg, event, tz, step.needs, facts.ts_ms, facts)

    def _evaluate(
        self,
        step: RuleStep,
        event: CostEvent,
        view: AggregateView,
        riskiest: RiskTier,
        scope_of: Callable[[CostEvent, RiskTier], Scope],
        now_ms: int,
        state: dict[str, Any],
        tenant: TenantSpec,
        budget_lookup: Callable[..., Any],
        out: Decisions,
    ) -> None:
        """One rule instance at one event: verdicts -> lifecycle -> builder. An error in one
        rule is counted and logged with the rule's name; it never stops the other rules.
        The scope (who a decision is about) is only worked out once there is one to make."""
        rule = step.rule
        instances = state.get(rule.name)
        if instances is None:
            instances = {}  # kept in the state only once it holds something
        gkey = step.gkey
        try:
            verdicts = self._verdicts(
                rule, gkey, event, view, now_ms, instances, budget_lookup, step.bkey
            )
            scope = scope_of(event, riskiest) if verdicts else None
            for verdict in verdicts:
                assert scope is not None
                self._advance(
                    rule,
                    step.group,
                    gkey,
                    verdict,
                    scope,
                    instances,
                    tenant,
                    view,
                    now_ms,
                    budget_lookup,
                    out,
                )
        except Exception:
            self.rule_errors[rule.name] = self.rule_errors.get(rule.name, 0) + 1
            errors = state.setdefault(ERRORS_KEY, {})
            errors[rule.name] = errors.get(rule.name, 0) + 1
            log.exception("rule %s failed on event %s; skipped", rule.name, event.cost_event_id)
        if instances:
            state[rule.name] = instances
        else:
            state.pop(rule.name, None)

    def _verdicts(
        self,
        rule: CompiledRule,
        gkey: str,
        event: CostEvent,
        view: AggregateView,
        now_ms: int,
        instances: dict[str, Any],
        budget_lookup: Callable[..., Any],
        bkey: str,
    ) -> list[Verdict]:
        if rule.budget is not None:
            forecast = instances.get(gkey + "@forecast", {})
            return budget_verdicts(rule.budget[0], rule.budget[1], view, "fired_ms" in forecast)
        spec = rule.spec
        assert spec is not None
        cond = spec.condition
        if isinstance(cond, AnomalyCondition):
            cstate = instances.setdefault("~" + gkey, {})
            closed = self._buckets.get(bkey) or []
            loop = self._buckets.get("~" + bkey) or {}
            idle = gkey not in instances  # nothing pending or firing for this group
            return anomaly_verdicts(cond, closed, cstate, loop, idle)  # type: ignore[arg-type]
        if isinstance(cond, SessionOutlierCondition):
            return session_verdicts(
                cond, event, instances.setdefault("~" + gkey, {}), instances, gkey
            )
        ctx = self._contexts.get(id(view))
        if ctx is not None:
            return [evaluate_condition(cond, ctx)]
        ctx = self._contexts[id(view)] = EvalContext(
            view,
            self.baselines,
            self.score_provider,
            lambda kind, period: budget_lookup(kind, period, event),
            event_labels(event),
            now_ms,
        )
        return [evaluate_condition(cond, ctx)]

    def _advance(
        self,
        rule: CompiledRule,
        group: tuple[str, ...],
        gkey: str,
        verdict: Verdict,
        scope: Scope,
        instances: dict[str, Any],
        tenant: TenantSpec,
        view: AggregateView,
        now_ms: int,
        budget_lookup: Callable[..., Any],
        out: Decisions,
    ) -> None:
        key = gkey + ("@" + verdict.instance if verdict.instance else "")
        inst = instances.get(key)
        if inst is None:
            if not verdict.holds:
                return  # nothing pending or firing: nothing to do, and no state to keep
            inst = instances[key] = {}
        at_ms = verdict.at_ms or now_ms
        spec = rule.spec
        timing = rule.timing
        if spec is not None and spec.for_ is not None and spec.for_.business_days is not None:
            need = spec.for_.business_days
            timing = lifecycle.Timing(
                0,
                timing.keep_firing_for_ms,
                timing.refresh_ms,
                lambda p, n: _business_days(p, n, tenant) >= need,
            )
        gate = gate_open(spec.when, at_ms, tenant) if spec is not None else True
        step = lifecycle.step(inst, verdict.holds, at_ms, timing, gate_open=gate)
        meta = rule.meta_for(verdict)
        fp = fingerprint(meta, scope, (*group, *((verdict.instance,) if verdict.instance else ())))
        group_labels = dict(zip(rule.group_by, group, strict=True))
        if step is lifecycle.Step.FIRE:
            decided, issued, mode = build_fire(meta, verdict, scope, at_ms, fp, group_labels)
            lifecycle.fired(inst, issued, mode)
            if verdict.alert_key:
                inst["ak"] = verdict.alert_key
            _attach_evidence(decided, view)
            self._notify(rule, decided, event_budgets=budget_lookup, event=view.event)
            out.extend(decided)
        elif step is lifecycle.Step.REFRESH:
            out.extend(build_refresh(meta, verdict, scope, at_ms, fp))
        elif step is lifecycle.Step.RESOLVE:
            alert_key = inst.pop("ak", None)
            fired_ms, issued, mode = lifecycle.resolved(inst)
            if alert_key is not None:
                verdict.alert_key = alert_key
            out.extend(
                build_resolve(meta, verdict, scope, at_ms, fp, fired_ms, issued, mode, group_labels)
            )
        if not inst:
            instances.pop(key, None)

    @staticmethod
    def _notify(
        rule: CompiledRule,
        decided: Decisions,
        *,
        event_budgets: Callable[..., Any],
        event: CostEvent,
    ) -> None:
        """``notify: [owner]`` names the owner of the budget in scope (label ``owner``, so a
        route can send it to the owner's channel); other entries are receivers as written."""
        if not rule.notify or not decided.alerts:
            return
        alert = decided.alerts[0]
        budgets = [event_budgets("budget", p, event) for p in ("day", "month")]
        owners = [b.owner for b in budgets if b is not None]
        alert.annotations["notify"] = [
            o for n in rule.notify for o in (owners if n == "owner" else [n])
        ]
        if owners:
            alert.labels["owner"] = owners[0]


def _idle(
    step: RuleStep,
    view: AggregateView,
    state: dict[str, Any],
    budget_lookup: Any,
    baselines: BaselineProvider,
) -> bool:
    """Whether evaluating the rule now would decide nothing: nothing of it is pending or firing
    for this group, and its condition cannot hold (see :mod:`~spendfuse.rules.can_hold`). A
    test that fails says "evaluate": the full evaluation then counts and logs the error."""
    rule = step.rule
    test = rule.can_hold
    if test is None:
        return False
    instances = state.get(rule.name)
    if instances and (rule.budget is not None or step.gkey in instances):
        return False
    try:
        return not test(view, budget_lookup, baselines)
    except Exception:
        return False


def _attach_evidence(decided: Decisions, view: AggregateView) -> None:
    """Where to look: the costliest open traces and the latest events the rule measured
    (``spendfuse explain ALERT_ID`` fetches them)."""
    for alert in decided.alerts:
        alert.evidence.top_traces = alert.evidence.top_traces or [
            TraceContribution(trace_id=trace, cost_usd=cost) for trace, cost in view.top_traces()
        ]
        alert.evidence.sample_event_ids = view.sample_event_ids()


def _business_days(pending_ms: int, now_ms: int, tenant: TenantSpec) -> int:
    tz = ZoneInfo(tenant.time_zone)
    start = datetime.fromtimestamp(pending_ms / 1000, tz=UTC).astimezone(tz).date()
    end = datetime.fromtimestamp(now_ms / 1000, tz=UTC).astimezone(tz).date()
    return business_days_between(start, end, tenant)


def _budget_lookup(budgets: list[CompiledRule]) -> Callable[[str, str, CostEvent], Any]:
    def lookup(kind: str, period: str, event: CostEvent) -> BudgetSpec | None:
        for rule in budgets:
            assert rule.budget is not None
            k, spec = rule.budget
            env_ok = spec.environment is None or spec.environment is event.environment
            if k == kind and spec.period == period and env_ok:
                return spec
        return None

    return lookup


class Engine(_Stage):
    """Per-use-case stage: the rule files' ``per: use_case`` rules and use-case budgets."""

    @classmethod
    def default(cls, *, rules_dir: Path | None = None, default_pack: bool = True) -> Engine:
        """The default pack (plus ``rules_dir`` on top)."""
        from spendfuse.rules.loader import load_rules

        return cls(load_rules(rules_dir, default_pack))

    def process(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        return self.process_batch([event], state)

    def process_batch(
        self,
        events: Sequence[CostEvent],
        state: dict[str, Any],
        cuts: list[tuple[int, int]] | None = None,
    ) -> Decisions:
        """Several events of one use case, in order (one record's worth, or several records'
        of one use case: decisions do not depend on the split). ``cuts``: see ``_decide``."""
        compiled = self.compiled  # one snapshot for the whole batch, even across a reload
        last = events[-1]
        plan = compiled.plan(last.tenant_id, last.use_case_id)
        return self._decide(events, state, plan, Scope.of, cuts=cuts)


def _tenant_scope(event: CostEvent, riskiest: RiskTier) -> Scope:
    scope = Scope.of(event, riskiest)
    scope.use_case_id = "*"
    return scope


class TenantEngine(_Stage):
    """Tenant stage: tenant-wide budgets, quotas and ``per: tenant`` rules over tenant state.

    The guardrail sees the *riskiest* tier the tenant has shown, so a tenant-wide action never
    degrades a tenant that runs any medium/high/critical-risk use case.
    """

    stage_key = "tenant_id"

    def process(self, event: CostEvent, tenant_state: dict[str, Any]) -> Decisions:
        return self.process_batch([event], tenant_state)

    def process_batch(
        self,
        events: Sequence[CostEvent],
        tenant_state: dict[str, Any],
        cuts: list[tuple[int, int]] | None = None,
    ) -> Decisions:
        plan = self.compiled.plan(events[0].tenant_id, None)
        return self._decide(
            events, tenant_state, plan, _tenant_scope, shared=plan.uses_shared, cuts=cuts
        )

    @property
    def active(self) -> bool:
        """Whether the tenant stage has anything to do (else the worker may skip it)."""
        rs = self.ruleset
        return bool(
            self.compiled.per_tenant
            or any(b.use_case_id is None for b in [*rs.budgets.values(), *rs.quotas.values()])
        )


__all__ = ["AggregateView", "CompiledRule", "Engine", "TenantEngine"]
