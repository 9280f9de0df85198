"""Spend anomalies on simulated traffic: growth is not inefficiency, loops are stopped fast."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from spendfuse.pipeline import Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine
from spendfuse.rules.loader import load_default_pack
from spendfuse.simulate import Fleet, Incident, UseCaseProfile, simulate_fleet

START = datetime(2026, 11, 2, tzinfo=UTC)  # Monday
INCIDENT_AT = START + timedelta(days=2, hours=11)  # Wednesday 11:00


def _watches() -> Engine:
    """The default pack's anomaly watches alone (``rules/packs/default/spend.yaml``)."""
    rs = load_default_pack()
    rs.rules = {name: r for name, r in rs.rules.items() if name.endswith("_anomaly")}
    return Engine(rs)


def _alerts(profile: UseCaseProfile, incident: Incident | None) -> list[dict]:
    events = simulate_fleet(
        Fleet((profile,)),
        START,
        timedelta(days=2, hours=17),
        [incident] if incident else [],
        seed=3,
    )
    result = replay_records((orjson.dumps(e) for e in events), Pipeline(_watches()))
    return [orjson.loads(a) for a in result.alerts if b'"firing"' in a]


def _minutes_after(alert: dict, t: datetime) -> float:
    fired = datetime.fromisoformat(alert["fired_at"].replace("Z", "+00:00"))
    return (fired - t).total_seconds() / 60


BOT = UseCaseProfile("bot", "acme", "low", tasks_per_minute=6.0)


def _set(scope: dict) -> dict:
    """A command's ``within`` without its unset qualifiers."""
    return {k: v for k, v in scope.items() if v is not None}


def test_traffic_growth_at_flat_unit_cost_raises_no_unit_cost_anomaly() -> None:
    """Doubled traffic is volume, not waste: only the volume watch (an alert, no action) says
    so, naming volume as the driver; no unit-cost, token or spend watch fires."""
    growth = Incident("traffic_growth", "bot", INCIDENT_AT, timedelta(hours=5), factor=2.0)
    alerts = _alerts(BOT, growth)
    assert {a["rule"] for a in alerts} == {"volume_shift_anomaly"}
    assert all(a["labels"]["driver"] == "volume" and a["actions_taken"] == [] for a in alerts)
    assert 0 <= _minutes_after(alerts[0], INCIDENT_AT) <= 20


def test_same_traffic_at_higher_unit_cost_does() -> None:
    bloat = Incident("prompt_bloat", "bot", INCIDENT_AT, timedelta(hours=5), factor=2.2)
    alerts = _alerts(BOT, bloat)
    assert {a["rule"] for a in alerts} & {"token_bloat_anomaly", "unit_cost_anomaly"}
    first = min(alerts, key=lambda a: a["fired_at"])
    assert 0 <= _minutes_after(first, INCIDENT_AT) <= 30
    assert first["evidence"]["value"] > first["evidence"]["baseline"]


def test_runaway_loop_is_stopped_within_five_minutes_on_low_risk() -> None:
    agent = UseCaseProfile("agent", "acme", "low", steps_per_task=(3, 6), tasks_per_minute=1.5)
    loop = Incident("runaway_loop", "agent", INCIDENT_AT, timedelta(minutes=30))
    events = simulate_fleet(Fleet((agent,)), START, timedelta(days=2, hours=12), [loop], seed=3)
    result = replay_records((orjson.dumps(e) for e in events), Pipeline(_watches()))
    alerts = [orjson.loads(a) for a in result.alerts]
    commands = [orjson.loads(c) for c in result.commands]
    loop_alert = next(a for a in alerts if a["rule"] == "agent_loop_anomaly")
    assert _minutes_after(loop_alert, INCIDENT_AT) <= 5
    kills = {c["target"]["type"]: c for c in commands if c["kind"] == "kill_switch"}
    assert kills["tool"]["target"] == {"type": "tool", "id": "search_api"}
    assert _set(kills["tool"]["within"]) == {
        "tenant_id": "acme",
        "use_case_id": "agent",
        "risk_tiers": ["low"],
    }
    assert kills["trace"]["risk_protection"] is True  # the looping task itself
    assert {c["command_id"] for c in kills.values()} <= set(loop_alert["actions_taken"])
    assert any(c["kind"] == "restore" for c in commands)  # lifted once the loop stopped


def test_runaway_loop_on_high_risk_stops_the_task_but_never_its_route() -> None:
    """Stopping the looping task removes no safety step: it happens at every tier. The tool
    kill, which would reach the route, is held back by the guardrail."""
    agent = UseCaseProfile("claims", "acme", "high", steps_per_task=(3, 6), tasks_per_minute=1.5)
    loop = Incident("runaway_loop", "claims", INCIDENT_AT, timedelta(minutes=30))
    events = simulate_fleet(Fleet((agent,)), START, timedelta(days=2, hours=12), [loop], seed=3)
    result = replay_records((orjson.dumps(e) for e in events), Pipeline(_watches()))
    alerts = [orjson.loads(a) for a in result.alerts]
    loop_alert = next(a for a in alerts if a["rule"] == "agent_loop_anomaly")
    commands = [orjson.loads(c) for c in result.commands]
    assert commands and {c["target"]["type"] for c in commands} == {"trace"}
    assert all(
        _set(c["within"]) == {"tenant_id": "acme", "use_case_id": "claims"} for c in commands
    )
    assert "guardrail" in loop_alert["guardrail_held"][0]
