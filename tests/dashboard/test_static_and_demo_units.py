"""The vendored chart build, the static whitelist, and the demo's traffic and gateway."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from spendfuse.demo.gateway import SMALL_MODEL, DemoGateway
from spendfuse.demo.traffic import LOOP_USE_CASE, DemoPlan, demo_events
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.streams.web.views import STATIC_DIR, load_assets

ROOT = Path(__file__).parents[2]
NOW = datetime(2026, 11, 23, 16, 0, 30, tzinfo=UTC)


def test_vendored_uplot_is_the_locked_version_and_matches_the_build() -> None:
    lock = json.loads((ROOT / "dashboard" / "package-lock.json").read_text())
    locked = lock["packages"]["node_modules/uplot"]["version"]
    vendor = STATIC_DIR / "vendor"
    assert (vendor / "VERSION").read_text().split() == ["uplot", locked]
    built = ROOT / "dashboard" / "node_modules" / "uplot" / "dist" / "uPlot.iife.min.js"
    if built.exists():  # after `make dashboard` (make test runs it): the copy is byte-exact
        assert (vendor / "uPlot.iife.min.js").read_bytes() == built.read_bytes()
    page = (STATIC_DIR / "index.html").read_text()
    assert "/static/vendor/uPlot.iife.min.js" in page
    assert "http://" not in page and "https://" not in page  # no CDN: works offline


def test_static_whitelist_serves_page_files_only() -> None:
    assets = load_assets(STATIC_DIR)
    assert {
        "index.html",
        "dashboard.js",
        "dashboard.css",
        "vendor/uPlot.iife.min.js",
        "vendor/uPlot.min.css",
    } <= set(assets)
    assert assets["dashboard.js"][1] == "text/javascript"
    assert not any(".." in name or name.endswith(".py") for name in assets)


def _plan() -> DemoPlan:
    return DemoPlan(
        now=NOW,
        history=timedelta(minutes=10),
        loop_after=timedelta(minutes=1),
        loop_for=timedelta(minutes=2),
        live_for=timedelta(minutes=5),
        run_id="r1",
    )


def test_demo_traffic_is_time_ordered_unique_and_has_the_loop() -> None:
    events = list(demo_events(_plan()))
    times = [e["event_time"] for e in events]
    assert times == sorted(times)
    assert len({e["cost_event_id"] for e in events}) == len(events)
    assert all(e["cost_event_id"].startswith("r1-") for e in events)
    loop = [e for e in events if "-loop-" in e["trace_id"]]
    assert loop and {e["use_case_id"] for e in loop} == {LOOP_USE_CASE}
    first_loop = datetime.fromisoformat(loop[0]["event_time"])
    assert NOW + timedelta(seconds=30) <= first_loop <= NOW + timedelta(minutes=2)
    assert datetime.fromisoformat(times[0]) >= NOW - timedelta(minutes=11)


def _command(kind: CommandKind) -> ControlCommand:
    return ControlCommand(
        command_id=f"c-{kind.value}",
        kind=kind,
        issued_by="rule:x",
        target=Target(type=TargetType.USE_CASE, id=LOOP_USE_CASE),
        reason="r",
        issued_at=NOW,
        expires_at=NOW + timedelta(hours=1),
    )


def test_demo_gateway_degrades_aborts_the_loop_and_lifts_on_restore() -> None:
    gw = DemoGateway()
    call = {
        "use_case_id": LOOP_USE_CASE,
        "component": "model_call",
        "trace_id": "t-ok",
        "model_or_service": "gpt-4o",
        "output_tokens": 2000,
    }
    looping = {**call, "trace_id": "t-loop", "is_retry": True}
    assert gw.admit(looping, NOW) == looping  # nothing in force yet
    gw.apply(_command(CommandKind.DEGRADE))
    assert gw.admit(looping, NOW) is None  # the loop's task is aborted
    degraded = gw.admit(call, NOW)
    assert degraded is not None
    assert degraded["model_or_service"] == SMALL_MODEL and degraded["output_tokens"] == 512
    gw.apply(_command(CommandKind.RESTORE))
    assert gw.admit(call, NOW) == call
    assert gw.admit(looping, NOW) is None  # an aborted task stays aborted
    gw.apply(_command(CommandKind.KILL_SWITCH))
    assert gw.admit(call, NOW) is None
    assert gw.admit(call, NOW + timedelta(hours=2)) == call  # expired


def test_writes_are_refused_when_no_token_is_configured() -> None:
    from types import SimpleNamespace

    from pydantic import SecretStr

    from spendfuse.dashboard_state import DashboardState
    from spendfuse.streams.metrics import SpendfuseMetrics
    from spendfuse.streams.web.views import WebContext, _authorized

    request = SimpleNamespace(headers={"Authorization": "Bearer anything"})
    closed = WebContext(DashboardState(), SpendfuseMetrics(), None, control_topic=None)
    ok, status, why = _authorized(closed, request)
    assert (ok, status) == (False, 403) and "SPENDFUSE_DASHBOARD__TOKEN" in why
    for blank in ("", "  "):  # SPENDFUSE_DASHBOARD__TOKEN= in a .env file: still closed
        empty = WebContext(DashboardState(), SpendfuseMetrics(), SecretStr(blank), None)
        assert _authorized(empty, SimpleNamespace(headers={}))[:2] == (False, 403)
        assert _authorized(empty, SimpleNamespace(headers={"Authorization": "Bearer "}))[0] is False
    open_ = WebContext(DashboardState(), SpendfuseMetrics(), SecretStr("s3cret"), None)
    assert _authorized(open_, request)[:2] == (False, 401)
    assert _authorized(open_, SimpleNamespace(headers={"Authorization": "Bearer s3cret"}))[0]
