"""The decision core's shortcuts decide exactly what the full evaluation decides.

* Skipping a rule whose condition cannot hold, at one event (``rules/can_hold.py``) or at any
  event of a pass (``rules/screens.py``), changes no alert, no command and no state, however
  events are split into records.
* Every rule is evaluated at every event, so the same events split into records of any size
  decide the same: the same alerts and commands, in the same order, and the same state (window
  rules and budgets too, which were once evaluated only once per record and clock minute).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas import CostEvent
from tests.support.events import BASE_TIME, make_event
from tests.support.rules import with_rules

_PER_EVENT = """
version: 1
rules:
  - name: minute_spend
    condition: {type: threshold, metric: spend_usd, window: 1m, op: ">", value: 3.0}
    keep_firing_for: 1m
    severity: high
    actions:
      - {kind: degrade, level: L1, target: use_case, mode: enforce, expires_in: 1h}
  - name: step_cap
    condition: {type: threshold, metric: step_number, window: event, op: ">", value: 6}
    severity: high
    actions:
      - {kind: kill_switch, target: trace, mode: enforce, expires_in: 1h}
  - name: costly_session
    condition: {type: threshold, metric: trace_cost_usd, window: trace, op: ">=", value: 2.0}
    severity: medium
  - name: tool_minute
    scope: {component: tool_call}
    group_by: [model]
    condition: {type: threshold, metric: calls, window: 1m, op: ">=", value: 4}
    severity: low
"""

_WINDOWED = """
budgets:
  - {name: daily, owner: '#finops', tenant_id: acme, use_case_id: bot, period: day,
     limit_usd: 20, thresholds: [50, 80, 100]}
  - {name: forecast, owner: '#finops', tenant_id: acme, use_case_id: bot, period: month,
     limit_usd: 40, forecast: true}
quotas:
  - {name: tenant_day, owner: '#finops', tenant_id: acme, period: day, limit_usd: 30,
     thresholds: [90]}
rules:
  - name: hourly_spend
    condition: {type: threshold, metric: spend_usd, window: 1h, op: ">", value: 6.0}
    for: 2m
    severity: medium
  - name: hourly_mix
    condition:
      type: any
      conditions:
        - {type: threshold, metric: cost_per_request, window: 1h, op: ">", value: 0.9,
           min_samples: 3}
        - {type: threshold, metric: calls, window: 24h, op: ">=", value: 30}
    severity: low
"""

_EVENT = st.fixed_dictionaries(
    {
        "gap_s": st.sampled_from([0, 1, 5, 20, 45, 70, 400, 4000]),
        "cost": st.sampled_from([0.0, 0.05, 0.4, 0.9, 1.6]),
        "trace": st.integers(0, 3),
        "step": st.one_of(st.none(), st.integers(1, 9)),
        "tool": st.booleans(),
        "model": st.sampled_from(["a", "b"]),
        "retry": st.booleans(),
    }
)


def _events(specs: list[dict[str, Any]]) -> list[CostEvent]:
    out, seconds = [], 0.0
    for i, spec in enumerate(specs):
        seconds += spec["gap_s"]
        extra: dict[str, Any] = {"trace_id": f"t{spec['trace']}", "is_retry": spec["retry"]}
        if spec["step"] is not None:
            extra["step_number"] = spec["step"]
        if spec["tool"]:
            extra["component"] = "tool_call"
        raw = make_event(
            "bot",
            cost=spec["cost"],
            at=BASE_TIME + timedelta(seconds=seconds),
            model_or_service=spec["model"],
            cost_event_id=f"e{i}",
            **extra,
        )
        out.append(CostEvent.model_validate(raw))
    return out


def _records(events: list[CostEvent], sizes: list[int]) -> list[list[CostEvent]]:
    out, i = [], 0
    for size in sizes:
        if i >= len(events):
            break
        out.append(events[i : i + size])
        i += size
    if i < len(events):
        out.append(events[i:])
    return out


def _decide(
    rs: RuleSet, records: list[list[CostEvent]], *, shortcuts: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    engine, tenant = Engine(rs), TenantEngine(rs)
    if not shortcuts:
        for plan in (engine.compiled.plan("acme", "bot"), tenant.compiled.plan("acme", None)):
            plan.screened = []  # no rule sleeps through a pass (rules/screens.py)
            for rule in plan.rules:
                rule.can_hold = rule.screen = None
    state: dict[str, Any] = {}
    tenant_state: dict[str, Any] = {}
    alerts, commands = [], []
    for record in records:
        for decided in (
            engine.process_batch(record, state),
            tenant.process_batch(record, tenant_state),
        ):
            alerts.extend(a.model_dump(mode="json") for a in decided.alerts)
            commands.extend(c.model_dump(mode="json") for c in decided.commands)
    return alerts, commands, _without_caches({"uc": state, "tenant": tenant_state})


def _without_caches(value: Any) -> Any:
    """State minus the baseline cache (``bl``): a cache of sums, filled whenever read."""
    if isinstance(value, dict):
        return {k: _without_caches(v) for k, v in value.items() if k != "bl"}
    if isinstance(value, list):
        return [_without_caches(v) for v in value]
    return value


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _events_in_records(test: Any) -> Any:
    """Up to 60 events (``specs``) and the record sizes to cut them into (``sizes``)."""
    return _SETTINGS(
        given(
            specs=st.lists(_EVENT, min_size=1, max_size=60),
            sizes=st.lists(st.integers(1, 25), min_size=1, max_size=60),
        )(test)
    )


@_events_in_records
def test_skipping_rules_that_cannot_hold_changes_nothing(
    specs: list[dict[str, Any]], sizes: list[int]
) -> None:
    rs = with_rules(_PER_EVENT + _WINDOWED, default_pack=True)
    records = _records(_events(specs), sizes)
    assert _decide(rs, records) == _decide(rs, records, shortcuts=False)


@_events_in_records
def test_per_event_rules_decide_the_same_whatever_the_record_sizes(
    specs: list[dict[str, Any]], sizes: list[int]
) -> None:
    rs = with_rules(_PER_EVENT, default_pack=False)
    events = _events(specs)
    one_each = _decide(rs, [[e] for e in events])
    batched = _decide(rs, _records(events, sizes))
    assert batched[:2] == one_each[:2]


@_events_in_records
def test_every_rule_decides_the_same_whatever_the_record_sizes(
    specs: list[dict[str, Any]], sizes: list[int]
) -> None:
    """Window rules (``for:`` included), budgets, forecasts, quotas, the anomaly watches and
    the default pack: alerts, commands and the whole state as with one event per record."""
    rs = with_rules(_PER_EVENT + _WINDOWED, default_pack=True)
    events = _events(specs)
    assert _decide(rs, _records(events, sizes)) == _decide(rs, [[e] for e in events])


def test_a_window_rule_decides_inside_a_record_as_it_would_one_event_at_a_time() -> None:
    """An hourly limit crossed and then resolved inside one record: the pending, firing and
    resolved steps all happen at the events that made them, not once at the record's end."""
    rs = with_rules("version: 1\n" + _WINDOWED, default_pack=False)
    specs = [
        {"gap_s": g, "cost": 1.6, "trace": 0, "step": None, "tool": False, "model": "a"}
        | {"retry": False}
        for g in [0, 30, 30, 30, 30, 30, 30, 30, 30, 30, 4000, 60]
    ]
    events = _events(specs)
    one_each = _decide(rs, [[e] for e in events])
    alerts, commands, state = _decide(rs, [events])
    assert (alerts, commands, state) == one_each
    statuses = [(a["rule"], a["status"]) for a in alerts]
    assert ("hourly_spend", "firing") in statuses
    assert ("hourly_spend", "resolved") in statuses


def test_the_shortcut_still_fires_at_the_crossing_event() -> None:
    """A sanity check that the properties above exercise decisions, not only silence."""
    rs = with_rules(_PER_EVENT, default_pack=False)
    specs = [
        {
            "gap_s": 1,
            "cost": 1.6,
            "trace": 0,
            "step": i,
            "tool": False,
            "model": "a",
            "retry": False,
        }
        for i in range(1, 9)
    ]
    events = _events(specs)
    alerts, commands, _ = _decide(rs, [events])
    fired = {(a["rule"], a["status"]) for a in alerts}
    assert ("minute_spend", "firing") in fired
    assert ("step_cap", "firing") in fired
    assert ("costly_session", "firing") in fired
    assert {c["issued_by"] for c in commands} == {"rule:minute_spend", "rule:step_cap"}
