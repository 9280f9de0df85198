"""The dashboard's state: spend buckets, band, budgets, alerts, commands in force, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.dashboard_state import DashboardConfig, DashboardState, project_budget
from spendfuse.finops.rollups import RollupAccumulator
from spendfuse.rules.silences import new_silence
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.schemas.pricing import price_event
from tests.support.events import make_event

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CFG = DashboardConfig(
    bucket_s=60,
    horizon_s=3600,
    band_window_s=1800,
    band_min_buckets=5,
    daily_budget_usd=10.0,
    monthly_budget_usd=100.0,
)


def _event(use_case: str, cost: float, at: datetime, **kw):
    return parse_cost_event_obj(make_event(use_case, cost=cost, at=at, **kw))


def _command(
    kind: CommandKind,
    at: datetime,
    *,
    target: str = "bot",
    ttl_s: int | None = 3600,
    issued_by: str = "rule:spend_rate_limit",
) -> ControlCommand:
    return ControlCommand(
        command_id=f"{kind.value}-{target}-{at.isoformat()}",
        kind=kind,
        target=Target(type=TargetType.USE_CASE, id=target),
        issued_by=issued_by,
        reason="test",
        issued_at=at,
        expires_at=at + timedelta(seconds=ttl_s) if ttl_s else None,
    )


def _alert(status: str, at: datetime, fp: str = "fp-1") -> Alert:
    return Alert(
        alert_id=f"{fp}-a",
        fingerprint=fp,
        rule="spend_rate_limit",
        status=status,
        severity="high",
        tenant_id="acme",
        use_case_id="bot",
        summary="over",
        evidence=Evidence(metric="spend_usd_per_window", value=6.0, threshold=5.0),
        fired_at=at,
        resolved_at=at + timedelta(minutes=2) if status == "resolved" else None,
    )


def _view(state: DashboardState, now: datetime, use_case: str = "bot") -> dict:
    return next(u for u in state.snapshot(now)["use_cases"] if u["use_case_id"] == use_case)


def test_spend_is_bucketed_by_event_time_as_a_rate_per_minute() -> None:
    state = DashboardState(CFG)
    state.add_event(_event("bot", 0.5, T0 + timedelta(seconds=5)))
    state.add_event(_event("bot", 0.25, T0 + timedelta(seconds=50)))
    state.add_event(_event("bot", 1.0, T0 + timedelta(minutes=2, seconds=1)))
    view = _view(state, T0 + timedelta(minutes=3))
    by_minute = dict(zip(view["t"], view["rate_usd_per_min"], strict=True))
    start_s = int(T0.timestamp())
    assert by_minute[start_s] == 0.75
    assert by_minute[start_s + 60] == 0.0  # a quiet minute is zero, not a gap
    assert by_minute[start_s + 120] == 1.0
    assert by_minute[start_s - 60] is None  # before the use case was first seen
    assert len(view["t"]) == CFG.horizon_s // CFG.bucket_s + 1


def test_band_is_mean_plus_minus_two_sigma_of_the_trailing_window() -> None:
    state = DashboardState(CFG)
    for minute in range(10):  # alternating 1.0 / 3.0 $/min: mean 2, σ 1
        state.add_event(
            _event("bot", 1.0 if minute % 2 == 0 else 3.0, T0 + timedelta(minutes=minute))
        )
    view = _view(state, T0 + timedelta(minutes=10))
    assert view["band_lower"][-1] == pytest.approx(0.0)  # 2 - 2·1, clipped at zero
    assert view["band_upper"][-1] == pytest.approx(4.0)
    first_full = view["t"].index(int(T0.timestamp()) + 4 * 60)
    assert view["band_upper"][first_full] is None  # fewer than band_min_buckets of history
    assert view["band_upper"][first_full + 1] is not None


def test_a_spike_stands_above_the_band_it_did_not_shape() -> None:
    state = DashboardState(CFG)
    for minute in range(20):
        state.add_event(_event("bot", 0.1, T0 + timedelta(minutes=minute)))
    state.add_event(_event("bot", 5.0, T0 + timedelta(minutes=20)))
    view = _view(state, T0 + timedelta(minutes=20, seconds=30))
    assert view["rate_usd_per_min"][-1] == pytest.approx(5.1 - 0.1)  # only the spike minute
    assert view["band_upper"][-1] == pytest.approx(0.1)  # flat history: zero σ, spike excluded
    assert view["rate_usd_per_min"][-1] > view["band_upper"][-1]


def test_budget_today_resets_at_midnight_and_projects_exhaustion() -> None:
    state = DashboardState(CFG)
    events = [_event("bot", 4.0, T0 - timedelta(days=1))]  # yesterday: month only
    events += [_event("bot", 0.4, T0 + timedelta(minutes=m)) for m in range(15)]  # $6 today
    acc = RollupAccumulator()
    for event in events:
        state.add_event(event)  # the chart's spend rate
        acc.add(price_event(event))
    state.add_rollups(acc.drain())  # the budget's spend
    now = T0 + timedelta(minutes=15)
    view = _view(state, now)
    day, month = view["budget_day"], view["budget_month"]
    assert day["used_usd"] == pytest.approx(6.0)
    assert month["used_usd"] == pytest.approx(10.0)
    assert day["status"] == "projected"  # $4 left at $0.40/min: 10 minutes
    exhausted = datetime.fromisoformat(day["exhausted_at"])
    assert exhausted == pytest.approx(now + timedelta(minutes=10), abs=timedelta(seconds=1))


def test_project_budget_statuses() -> None:
    end = T0 + timedelta(hours=1)
    assert project_budget(12.0, 10.0, 0.0, T0, end)["status"] == "exhausted"
    assert project_budget(1.0, 10.0, 0.0, T0, end)["status"] == "ok"
    assert project_budget(1.0, 10.0, 0.001, T0, end)["exhausted_at"] is None  # not this period


def test_commands_in_force_follow_the_latest_per_target_and_expire_on_read() -> None:
    state = DashboardState(CFG)
    state.add_command(_command(CommandKind.DEGRADE, T0, ttl_s=600))
    state.add_command(
        _command(CommandKind.KILL_SWITCH, T0, target="agent", issued_by="operator:ana", ttl_s=None)
    )
    in_force = state.snapshot(T0 + timedelta(minutes=1))["commands_in_force"]
    assert [(c["key"], c["kind"], c["issued_by"]) for c in in_force] == [
        ("use_case:agent", "kill_switch", "operator:ana"),
        ("use_case:bot", "degrade", "rule:spend_rate_limit"),
    ]
    later = state.snapshot(T0 + timedelta(minutes=11))["commands_in_force"]
    assert [c["key"] for c in later] == ["use_case:agent"]  # the degrade expired
    state.add_command(_command(CommandKind.RESTORE, T0 + timedelta(minutes=2), target="agent"))
    assert state.snapshot(T0 + timedelta(minutes=3))["commands_in_force"][0]["kind"] == "degrade"


def test_a_repeated_or_older_command_does_not_replace_the_newer_one() -> None:
    state = DashboardState(CFG)
    newer = _command(CommandKind.DEGRADE, T0 + timedelta(minutes=5))
    state.add_command(newer)
    state.add_command(newer)
    state.add_command(_command(CommandKind.RESTORE, T0))  # replayed out of order
    snap = state.snapshot(T0 + timedelta(minutes=6))
    assert [c["kind"] for c in snap["commands_in_force"]] == ["degrade"]
    assert len(snap["commands_recent"]) == 2


def test_alerts_active_resolved_and_silenced() -> None:
    state = DashboardState(CFG)
    state.add_alert(_alert("firing", T0))
    state.add_alert(_alert("firing", T0, fp="fp-2"))
    silences = [
        new_silence(['fingerprint="fp-2"'], timedelta(hours=1), "ana", "load test", T0),
        new_silence(['use_case_id="other"'], timedelta(hours=1), "bo", "unrelated", T0),
    ]
    snap = state.snapshot(T0 + timedelta(minutes=1), silences)
    assert {a["fingerprint"]: a["silenced"] for a in snap["alerts_active"]} == {
        "fp-1": False,
        "fp-2": True,
    }
    state.add_alert(_alert("resolved", T0))
    assert snap["alerts_active"][0]["silence"]["author"] == "ana"
    snap = state.snapshot(T0 + timedelta(hours=2), silences)  # the silence has expired too
    assert [a["fingerprint"] for a in snap["alerts_active"]] == ["fp-2"]
    assert snap["alerts_active"][0]["silenced"] is False
    assert [a["fingerprint"] for a in snap["alerts_recent"]] == ["fp-1"]


def test_memory_is_bounded() -> None:
    cfg = DashboardConfig(
        bucket_s=60, horizon_s=600, max_use_cases=3, max_charts=2, max_alerts=2, max_commands=4
    )
    state = DashboardState(cfg)
    for minute in range(200):
        state.add_event(_event("bot", 0.1, T0 + timedelta(minutes=minute)))
    assert len(state.use_cases["bot"].buckets) <= 2 * (cfg.horizon_s // cfg.bucket_s + 1)
    for i in range(5):
        state.add_event(_event(f"uc-{i}", 0.1, T0))
    assert list(state.use_cases) == ["uc-2", "uc-3", "uc-4"]  # least recently active dropped
    assert len(state.snapshot(T0)["use_cases"]) == 2
    for i in range(5):
        state.add_alert(_alert("firing", T0, fp=f"fp-{i}"))
        state.add_command(_command(CommandKind.DEGRADE, T0 + timedelta(seconds=i)))
    assert len(state.alerts) == 2
    assert len(state.commands) == 4


def test_chart_ends_now_or_at_the_newest_event_of_a_past_replay() -> None:
    state = DashboardState(CFG)
    state.add_event(_event("bot", 1.0, T0))
    assert state.chart_end(T0 + timedelta(minutes=5)) == int(
        (T0 + timedelta(minutes=5)).timestamp() * 1000
    )
    assert state.chart_end(T0 + timedelta(days=2)) == int(T0.timestamp() * 1000)


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="bucket_s must be positive"):
        DashboardConfig(bucket_s=0)


def test_charts_put_recent_then_alerting_use_cases_first() -> None:
    state = DashboardState(CFG)
    state.add_event(_event("old-big", 9.0, T0 - timedelta(hours=3)))  # outside the horizon
    state.add_event(_event("recent-small", 0.1, T0))
    state.add_event(_event("recent-big", 1.0, T0))
    state.add_event(_event("bot", 0.01, T0))
    state.add_event(_event("old-alerting", 0.5, T0 - timedelta(hours=3)))
    state.add_alert(_alert("firing", T0))  # on "bot"
    state.add_alert(
        _alert("firing", T0 - timedelta(hours=3), fp="fp-old").model_copy(
            update={"use_case_id": "old-alerting"}
        )
    )
    order = [u["use_case_id"] for u in state.snapshot(T0 + timedelta(minutes=1))["use_cases"]]
    assert order == ["bot", "recent-big", "recent-small", "old-alerting", "old-big"]


def test_commands_in_force_stay_bounded_whatever_the_number_of_targets() -> None:
    from spendfuse.schemas.common import DegradationLevel

    state = DashboardState(DashboardConfig(max_in_force=100))
    at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    for i in range(1_000):
        state.add_command(
            ControlCommand(
                command_id=f"c{i}",
                kind=CommandKind.DEGRADE,
                level=DegradationLevel.L1,
                target=Target(type=TargetType.USE_CASE, id=f"uc-{i}"),
                issued_by="rule:r",
                reason="test",
                issued_at=at,
                use_case_id=f"uc-{i}",
            )
        )
    assert len(state.in_force) == 100
    shown = state.snapshot(at)["commands_in_force"]
    assert {c["target"]["id"] for c in shown} == {f"uc-{i}" for i in range(900, 1000)}
