"""The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright.

A worker on the real broker is fed the demo's simulated traffic: 40 minutes of normal spend for
five use cases and a runaway agent loop on ``research-agent`` for the last three. The test waits
for the worker to decide (alert + command), then loads the page and checks that every chart has
painted, that the incident shows in the alerts and commands tables, that the budgets table shows
the YAML budgets of its rules directory (the demo pack and the demo fleet's budgets) with their
spend, that the showback lists spend per cost center from the published rollups, and saves a
screenshot (also copied to ``tests/artifacts/dashboard.png`` for a reviewer).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from spendfuse.demo.traffic import LOOP_USE_CASE, demo_fleet
from spendfuse.rules.loader import DEMO_PACK, EXAMPLES_PACK
from tests.support.dashboard import get_json, incident_plan, publish_plan
from tests.support.events import unique
from tests.support.kafka import WorkerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACT = Path(__file__).parents[1] / "artifacts" / "dashboard.png"
DEMO_USE_CASES = {p.use_case_id for p in demo_fleet().use_cases}

# Non-transparent pixels per chart canvas: uPlot paints axes, grid, band and the line.
_PAINTED_PIXELS_JS = """() => [...document.querySelectorAll('.card')].map(card => {
  const c = card.querySelector('canvas');
  if (!c) return [card.dataset.useCase, 0];
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0;
  for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
  return [card.dataset.useCase, n];
})"""


@pytest.fixture(scope="module")
def fed_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, int]]:
    rules = tmp_path_factory.mktemp("dashboard-rules")
    for source in (DEMO_PACK / "spend.yaml", EXAMPLES_PACK / "budgets-demo-fleet.yaml"):
        shutil.copyfile(source, rules / source.name)
    proc = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("dashboard-worker"),
        SPENDFUSE_RULES_DIR=str(rules),
    ).start()
    try:
        yield proc, publish_plan(kafka_bootstrap, incident_plan(unique("browser")))
    finally:
        proc.stop()


def _base(worker: WorkerProcess) -> str:
    return f"http://127.0.0.1:{worker.env['SPENDFUSE_WEB_PORT']}"


def _showback_caught_up(snap: dict) -> bool:
    """The rollups of the loop's use case (this month, from the topic's rows) add up to what
    its card counted from the events (this UTC month; it has no monthly budget of its own)."""
    rows = snap["showback"]["dimensions"].get("use_case_id", [])
    rolled = next((r["month_usd"] for r in rows if r["name"] == LOOP_USE_CASE), None)
    card = next((uc for uc in snap["use_cases"] if uc["use_case_id"] == LOOP_USE_CASE), None)
    return (
        rolled is not None
        and card is not None
        and abs(rolled - card["budget_month"]["used_usd"]) < 1e-3
    )


def _wait_for_incident(worker: WorkerProcess, sent: int, timeout_s: float = 120) -> dict:
    """Wait until the worker has handled every event and shows the incident."""
    deadline = time.monotonic() + timeout_s
    snap: dict = {}
    while time.monotonic() < deadline:
        snap = get_json(_base(worker) + "/api/dashboard")
        if snap["events_seen"] < sent:
            time.sleep(1)
            continue
        alerted = any(
            a["use_case_id"] == LOOP_USE_CASE and a["rule"] == "spend_rate_limit"
            for a in snap["alerts_active"]
        )
        commanded = any(
            c["key"].startswith(f"use_case:{LOOP_USE_CASE}|") for c in snap["commands_in_force"]
        )
        if alerted and commanded and _showback_caught_up(snap):
            return snap
        time.sleep(1)
    raise AssertionError(
        f"no incident on the dashboard after {timeout_s}s: "
        f"{snap.get('alerts_active')} {snap.get('commands_in_force')}\n"
        f"{worker.log_tail()}"
    )


def test_dashboard_shows_charts_and_the_incident(
    fed_worker: tuple[WorkerProcess, int], tmp_path: Path
) -> None:
    worker, sent = fed_worker
    assert CHROMIUM.exists(), (
        "headless Chromium is missing at /usr/bin/chromium: run `make test`, which installs "
        "Debian's chromium package (apt-get install -y chromium)"
    )
    snap = _wait_for_incident(worker, sent)
    charted = {uc["use_case_id"] for uc in snap["use_cases"]}
    assert charted >= DEMO_USE_CASES, charted  # (earlier tests' use cases may show too)
    shot = tmp_path / "dashboard.png"
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1300},
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(_base(worker) + "/dashboard/")
            page.wait_for_selector("body[data-loaded=true]", state="attached", timeout=30_000)
            page.wait_for_selector(f'.card[data-use-case="{LOOP_USE_CASE}"] canvas', timeout=30_000)
            painted = dict(page.evaluate(_PAINTED_PIXELS_JS))
            alert_rows = page.locator(".alert-row").all_inner_texts()
            command_rows = page.locator(
                f'.command-row[data-target^="use_case:{LOOP_USE_CASE}|"]'
            ).all_inner_texts()
            budget_rows = page.locator(".budget-row").all_inner_texts()
            showback_rows = page.locator(
                '.showback-table[data-dimension="cost_center"] .showback-row'
            ).all_inner_texts()
            loop_card_alerting = page.locator(
                f'.card.alerting[data-use-case="{LOOP_USE_CASE}"]'
            ).count()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)

    assert errors == []
    assert set(painted) >= DEMO_USE_CASES, painted
    assert all(painted[name] > 5000 for name in DEMO_USE_CASES), painted  # every chart drew
    assert any(LOOP_USE_CASE in row and "spend_rate_limit" in row for row in alert_rows), alert_rows
    assert command_rows and any(k in command_rows[0] for k in ("degrade", "kill switch")), (
        command_rows
    )
    assert loop_card_alerting == 1
    budgets = {b["name"]: b for b in snap["budgets"]}
    assert budgets["support-bot-daily"]["limit"] == 50.0  # as the YAML says
    assert budgets["support-bot-daily"]["spent"] > 0
    assert budgets["acme-monthly"]["scope"] == "tenant acme"
    assert any(row.startswith("support-bot-daily") for row in budget_rows), budget_rows
    assert len(budget_rows) == len(budgets)
    card = next(uc for uc in snap["use_cases"] if uc["use_case_id"] == "support-bot")
    assert card["budget_day"]["source"] == "support-bot-daily"
    assert showback_rows and "$" in showback_rows[0], showback_rows
    assert _showback_caught_up(snap)
    assert shot.stat().st_size > 20_000
