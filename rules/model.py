"""The rule-file model (format ``version: 1``), validated by pydantic with ``extra="forbid"``.

A file may hold ``rules``, ``budgets``, ``quotas``, ``tenants`` (time zone, business days),
and the notification policy: ``route``, ``inhibit_rules``, ``receivers``. A directory of files
merges into one :class:`RuleSet` (see ``loader.py``).
"""

from __future__ import annotations

import difflib
from datetime import date, time
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from spendfuse.rules.durations import Duration, DurationField
from spendfuse.rules.matchers import Matcher, MatcherList, parse_matcher
from spendfuse.rules.metrics.catalog import METRICS, WINDOWS
from spendfuse.schemas.command import DegradeParams, TargetType
from spendfuse.schemas.common import DegradationLevel, Environment, RiskTier, Severity

Op = Literal[">", ">=", "<", "<="]
Period = Literal["day", "month", "quarter"]
#: what a budget counts: USD spend, tokens, requests (billable events) or agent steps
Measure = Literal["spend_usd", "total_tokens", "calls", "step_events"]


class _Strict(BaseModel):
    # No NaN or infinity in any number (`.nan`, "inf", 1e999): a rule compared with NaN never
    # fires, and an infinite budget never burns.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)


def check_metric(name: str, window: str | None = None) -> str:
    if name not in METRICS:
        near = difflib.get_close_matches(name, list(METRICS), n=1)
        tip = f"; did you mean {near[0]!r}?" if near else "; see `spendfuse rules metrics`"
        raise ValueError(f"unknown metric {name!r}{tip}")
    allowed = METRICS[name].windows()
    if window is not None and window not in allowed:
        raise ValueError(f"metric {name!r} has no window {window!r}; use one of {allowed}")
    return name


def check_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        near = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        tip = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"unknown time zone {name!r}{tip}") from None
    return name


class _MetricCondition(_Strict):
    metric: str
    window: Literal["event", "trace", "1m", "1h", "24h", "7d", "day", "month", "quarter"] = "1h"
    min_samples: int = Field(
        default=0,
        ge=0,
        description="No verdict on fewer samples in the window: the ratio's denominator "
        "(requests, outcomes, reviews, ...) or, for sums, events.",
    )

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return check_metric(value)

    @model_validator(mode="after")
    def _known_window(self) -> _MetricCondition:
        check_metric(self.metric, self.window)
        return self


class ThresholdCondition(_MetricCondition):
    type: Literal["threshold"]
    op: Op = ">"
    value: float


class RatioToBaselineCondition(_MetricCondition):
    """``metric`` over ``window`` divided by its baseline (default: 7-day rolling mean)."""

    type: Literal["ratio_to_baseline"]
    baseline: DurationField = Field(default=Duration(7, "d"), description="History learned from.")
    op: Op = ">"
    value: float = Field(gt=0)
    min_history: DurationField = Field(default=Duration(1, "d"), description="Else no verdict.")


def check_detector(spec: str | dict[str, Any]) -> str | dict[str, Any]:
    """A detector named in a rule file must exist and take the params given (built once here,
    so a typo is a load-time error with its place in the file, not a crash at the first event)."""
    from spendfuse.detectors import create, list_detectors

    name = spec if isinstance(spec, str) else spec.get("name")
    try:
        create(spec)
    except KeyError:
        known = list_detectors(include_aliases=True)
        near = difflib.get_close_matches(str(name), known, n=1)
        tip = f"; did you mean {near[0]!r}?" if near else f"; one of {known}"
        raise ValueError(f"unknown detector {name!r}{tip}") from None
    except (TypeError, ValueError) as exc:
        text = str(exc)
        raise ValueError(text if "detector" in text else f"detector {name!r}: {text}") from None
    return spec


class DetectorRef(_Strict):
    """``detector: {name: ..., params: {...}}``: any detector in the registry, by name."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _exists(self) -> DetectorRef:
        check_detector({"name": self.name, "params": self.params})
        return self

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params)}


def _detector_ref(value: Any) -> Any:
    return {"name": value} if isinstance(value, str) else value


DetectorField = Annotated[DetectorRef, BeforeValidator(_detector_ref)]


class DetectorScoreCondition(_MetricCondition):
    """The score in [0, 1] a registry detector gives the metric's current hour, having learned
    the closed hours before it."""

    type: Literal["detector_score"]
    detector: DetectorField = Field(default_factory=lambda: DetectorRef(name="default"))
    op: Op = ">="
    value: float = Field(ge=0, le=1)


Signal = Literal[
    "spend_usd",
    "calls",
    "tasks",
    "cost_per_call_usd",
    "tokens_per_call",
    "cache_hit_rate",
    "loop_cost_usd",
    "retry_and_tool_cost_usd",
    "max_steps_per_trace",
]


class ColdStartPrior(_Strict):
    """``prior: {spread: 0.2, weight: 12}``: arm a new use case's baseline from its first
    bucket instead of waiting out the detector's grace period.

    The first bucket with a value becomes a :class:`~spendfuse.detectors.seasonal_baseline.Prior`
    (level: that bucket's value; ``spread``: the deviation assumed, in the detector's transformed
    units, e.g. log units for ``transform: log``; ``weight``: how many buckets it is worth), so
    the watch judges from the second bucket on; its own buckets blend the prior out.
    """

    spread: float = Field(gt=0, description="assumed deviation, in the detector's units")
    weight: int = Field(default=12, ge=1, le=10_000, description="buckets the prior is worth")


class AnomalyCondition(_Strict):
    """A signal bucketed in event time, judged against a registry detector's baseline.

    Detectors with a baseline (``expected``/``zscore``, e.g. ``seasonal_baseline``) are judged
    by a z-score *and* a ratio to the baseline, so a statistically odd but cheap wiggle pages
    no one; any other detector by its score. A verdict comes once per closed bucket.
    """

    type: Literal["anomaly"]
    signal: Signal
    bucket: DurationField = Field(default=Duration(5, "m"))
    detector: DetectorField = Field(default_factory=lambda: DetectorRef(name="seasonal_baseline"))
    direction: Literal["up", "down"] = "up"
    z: float = Field(default=4.0, gt=0, description="z-score needed (baseline detectors)")
    score: float = Field(default=0.9, gt=0, le=1, description="score needed (other detectors)")
    min_ratio: float = Field(default=2.0, gt=0, description="value/baseline needed (up)")
    min_drop: float = Field(default=0.0, ge=0, description="baseline - value needed (down)")
    min_value: float = Field(default=0.0, ge=0, description="values below this never count")
    min_calls: int = Field(default=10, gt=0, description="calls a bucket needs for unit signals")
    carry_for: DurationField | None = Field(
        default=None,
        description="a bucket short of min_calls hands its calls to the next, up to this long",
    )
    prior: ColdStartPrior | None = Field(
        default=None, description="a new use case's first bucket arms the baseline"
    )

    @field_validator("bucket")
    @classmethod
    def _whole_seconds(cls, value: Duration) -> Duration:
        if value.business_days is not None or value.seconds < 10:
            raise ValueError("bucket: use a duration of at least 10s, e.g. 1m or 5m")
        return value

    @field_validator("carry_for")
    @classmethod
    def _carry_whole_buckets(cls, value: Duration | None) -> Duration | None:
        if value is not None and value.business_days is not None:
            raise ValueError("carry_for: use a clock duration, e.g. 30m or 1h")
        return value

    def carry_buckets(self) -> int:
        """How many buckets in a row may pool their calls (0: none)."""
        if self.carry_for is None:
            return 0
        return max(self.carry_for.seconds // self.bucket.seconds, 1)

    @model_validator(mode="after")
    def _prior_needs_a_baseline(self) -> AnomalyCondition:
        from spendfuse.detectors import create

        if self.prior is not None and not hasattr(create(self.detector.spec()), "start_from"):
            raise ValueError(
                f"prior: detector {self.detector.name!r} cannot start from a prior;"
                " use seasonal_baseline or drop prior"
            )
        return self


class SessionOutlierCondition(_Strict):
    """A running session (trace) costlier than nearly every finished session of its use case.

    Decided at every event of a trace (:mod:`spendfuse.rules.sessions`): the use case learns
    the ``quantile`` of its finished sessions' cost online, and a session is flagged once, at
    the event whose cost carries it past that quantile (and past ``min_cost_usd``), after
    ``min_sessions`` sessions have finished. One alert per flagged session.
    """

    type: Literal["session_outlier"]
    quantile: float = Field(default=0.999, ge=0.5, lt=1, description="e.g. 0.999 = P99.9")
    min_sessions: int = Field(default=500, ge=1, description="finished sessions before a flag")
    min_cost_usd: float = Field(default=0.05, ge=0, description="never flag a cheaper session")
    idle: DurationField = Field(
        default=Duration(15, "m"), description="a session with no event for this long finished"
    )
    max_open: int = Field(default=5000, gt=0, le=100_000, description="running sessions held")

    @field_validator("idle")
    @classmethod
    def _clock_duration(cls, value: Duration) -> Duration:
        if value.business_days is not None or value.seconds < 1:
            raise ValueError("idle: use a duration of at least 1s, e.g. 15m")
        return value


class BudgetPercentCondition(_Strict):
    """Percent used of the budget (or quota) that covers this scope for ``period``."""

    type: Literal["budget_percent"]
    period: Period
    budget_kind: Literal["budget", "quota"] = "budget"
    op: Op = ">="
    value: float = Field(gt=0)


class AllCondition(_Strict):
    type: Literal["all"]
    conditions: list[Condition] = Field(min_length=1)


class AnyCondition(_Strict):
    type: Literal["any"]
    conditions: list[Condition] = Field(min_length=1)


Condition = Annotated[
    ThresholdCondition
    | RatioToBaselineCondition
    | DetectorScoreCondition
    | BudgetPercentCondition
    | AnomalyCondition
    | SessionOutlierCondition
    | AllCondition
    | AnyCondition,
    Field(discriminator="type"),
]


class _CommandAction(_Strict):
    mode: Literal["enforce", "shadow"] = "enforce"
    target: TargetType = TargetType.USE_CASE
    expires_in: DurationField = Duration(1, "h")
    restore_on_clear: bool = True


class AlertAction(_Strict):
    kind: Literal["alert"]
    notify: list[str] = Field(default_factory=list, description="Extra receivers, e.g. owner.")


class DegradeAction(_CommandAction):
    kind: Literal["degrade"]
    level: Literal["L1", "L2", "L3", "L4"]
    params: DegradeParams = Field(default_factory=DegradeParams)


class KillSwitchAction(_CommandAction):
    kind: Literal["kill_switch"]
    target: TargetType
    expires_in: DurationField


Action = Annotated[AlertAction | DegradeAction | KillSwitchAction, Field(discriminator="kind")]
StrOrList = str | list[str]


class Scope(_Strict):
    """Which events a rule applies to; every given field must match (lists mean any of)."""

    tenant_id: StrOrList | None = None
    use_case_id: StrOrList | None = None
    environment: Environment | list[Environment] | None = None
    risk_tier: RiskTier | list[RiskTier] | None = None
    model: StrOrList | None = None
    tool: StrOrList | None = None
    route_policy: StrOrList | None = None
    component: StrOrList | None = None
    matchers: MatcherList = Field(default_factory=list)

    def parsed_matchers(self) -> list[Matcher]:
        return [parse_matcher(t) for t in self.matchers]


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class When(_Strict):
    """When a rule may *fire*, in the tenant's local time; clearing is never gated."""

    after: time | None = None
    before: time | None = None
    business_days_only: bool = False


class RuleSpec(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    per: Literal["use_case", "tenant"] = "use_case"
    scope: Scope = Field(default_factory=Scope)
    condition: Condition
    for_: DurationField | None = Field(default=None, alias="for")
    keep_firing_for: DurationField = Field(
        default=Duration(10, "m"),
        description="Resolve only once the condition has not held for this long (no flapping).",
    )
    when: When | None = None
    severity: Severity
    risk_protection: bool = Field(
        default=False, description="L4 risk protection: may act on medium/high/critical tiers."
    )
    group_by: list[str] = Field(
        default_factory=list,
        description="Measure the metric per value of these labels (cost_center, tool, model...)",
    )
    max_groups: int = Field(
        default=1000,
        gt=0,
        le=100_000,
        description="Groups tracked per key; events of further groups are counted, not measured.",
    )
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    actions: list[Action] = Field(default_factory=lambda: [AlertAction(kind="alert")])
    enabled: bool = True

    @field_validator("group_by")
    @classmethod
    def _known_labels(cls, value: list[str]) -> list[str]:
        from spendfuse.rules.scope import LABELS

        for label in value:
            if label not in LABELS:
                near = difflib.get_close_matches(label, LABELS, n=1)
                tip = f"; did you mean {near[0]!r}?" if near else f"; one of {list(LABELS)}"
                raise ValueError(f"unknown group_by label {label!r}{tip}")
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a label twice")
        return value

    @model_validator(mode="after")
    def _anomaly_at_top(self) -> RuleSpec:
        def nested(cond: Any) -> bool:
            return any(
                isinstance(c, AnomalyCondition | SessionOutlierCondition) or nested(c)
                for c in getattr(cond, "conditions", [])
            )

        if nested(self.condition):
            raise ValueError(
                "an anomaly or session_outlier condition cannot be nested in all/any;"
                " give it a rule of its own"
            )
        return self

    @model_validator(mode="after")
    def _l4_needs_risk_protection(self) -> RuleSpec:
        for action in self.actions:
            if (
                isinstance(action, DegradeAction)
                and action.level == "L4"
                and not self.risk_protection
            ):
                raise ValueError("level L4 is risk protection: set risk_protection: true")
        return self


class BudgetSpec(_Strict):
    """A budget (or quota) for one use case, or a whole tenant when use_case_id is unset,
    optionally narrowed to an environment, cost center, business unit or risk tier.

    ``measure`` says what it counts: USD spend (``limit_usd``), or tokens, requests or agent
    steps (``limit``). ``forecast``: also alert when the period's projection at its burn rate so
    far crosses the limit, before any threshold does (off unless set).
    """

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    owner: str = Field(min_length=1, description="Who is told: a person, team or channel.")
    tenant_id: str
    use_case_id: str | None = None
    environment: Environment | None = None
    cost_center: str | None = Field(default=None, min_length=1)
    business_unit: str | None = Field(default=None, min_length=1)
    risk_tier: RiskTier | None = None
    period: Period
    measure: Measure = "spend_usd"
    limit_usd: float | None = Field(default=None, gt=0)
    limit: float | None = Field(default=None, gt=0, description="In the measure's unit.")
    forecast: bool = Field(
        default=False, description="Also alert when the period's projection crosses the limit."
    )
    enforcement: Literal["soft", "hard"] = "soft"
    thresholds: list[float] = Field(default_factory=lambda: [50.0, 80.0, 95.0, 100.0])
    on_exhausted: DegradeAction | KillSwitchAction | None = Field(
        default=None, discriminator="kind", description="Hard budgets only: act at 100%."
    )

    @property
    def cap(self) -> float:
        """The limit, in the measure's unit."""
        return float(self.limit_usd if self.limit_usd is not None else self.limit or 0.0)

    @model_validator(mode="after")
    def _hard_needs_action(self) -> BudgetSpec:
        if (self.limit_usd is None) == (self.limit is None):
            raise ValueError("give the budget one limit: limit_usd (spend) or limit (measure)")
        if self.limit_usd is not None and self.measure != "spend_usd":
            raise ValueError(f"limit_usd is for spend; a {self.measure} quota takes limit")
        if self.on_exhausted is not None and self.enforcement != "hard":
            raise ValueError("on_exhausted needs enforcement: hard")
        if any(t <= 0 for t in self.thresholds):
            raise ValueError("thresholds are percents greater than 0")
        return self


class TenantSpec(_Strict):
    tenant_id: str
    time_zone: str = "UTC"
    business_days: list[Weekday] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]
    )
    holidays: list[date] = Field(default_factory=list)

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_time_zone(value)


class RouteSpec(_Strict):
    receiver: str | None = None
    matchers: MatcherList = Field(default_factory=list)
    group_by: list[str] | None = None
    group_wait: DurationField | None = None
    group_interval: DurationField | None = None
    repeat_interval: DurationField | None = None
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteSpec] = Field(default_factory=list)


class InhibitRule(_Strict):
    source_matchers: MatcherList = Field(min_length=1)
    target_matchers: MatcherList = Field(min_length=1)
    equal: list[str] = Field(default_factory=list)


class SlackReceiver(_Strict):
    channel: str = Field(pattern=r"^[#@]?[A-Za-z0-9_.-]+$")


class WebhookReceiver(_Strict):
    """POST Alertmanager's webhook JSON (version 4) to ``url``."""

    url: str = Field(pattern=r"^https?://")
    bearer_token_env: str | None = Field(default=None, description="Env var holding a token.")


class PagerDutyReceiver(_Strict):
    """PagerDuty Events API v2: trigger on firing, resolve on resolution, one dedup_key."""

    routing_key_env: str = Field(default="SPENDFUSE_PAGERDUTY_ROUTING_KEY")
    url: str = Field(default="https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://")


class ReceiverSpec(_Strict):
    name: str
    slack: SlackReceiver | None = None
    console: bool = False
    webhook: WebhookReceiver | None = None
    pagerduty: PagerDutyReceiver | None = None


class RuleFile(_Strict):
    version: Literal[1]
    rules: list[RuleSpec] = Field(default_factory=list)
    budgets: list[BudgetSpec] = Field(default_factory=list)
    quotas: list[BudgetSpec] = Field(default_factory=list)
    tenants: list[TenantSpec] = Field(default_factory=list)
    route: RouteSpec | None = None
    inhibit_rules: list[InhibitRule] = Field(default_factory=list)
    receivers: list[ReceiverSpec] = Field(default_factory=list)


AllCondition.model_rebuild()
AnyCondition.model_rebuild()
RouteSpec.model_rebuild()

__all__ = ["WINDOWS", "DegradationLevel"]
