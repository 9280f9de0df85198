"""Feed a worker the demo's simulated traffic at once (no real-time pacing) for dashboard tests."""

from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

from spendfuse.demo.traffic import DemoPlan, demo_events
from spendfuse.producer import CostEventPublisher


def incident_plan(run_id: str, now: datetime | None = None) -> DemoPlan:
    """40 minutes of normal traffic ending now; a runaway loop still running for the last 3."""
    return DemoPlan(
        now=now or datetime.now(UTC),
        history=timedelta(minutes=40),
        loop_after=timedelta(minutes=-3),
        loop_for=timedelta(minutes=30),
        live_for=timedelta(0),
        run_id=run_id,
    )


def publish_plan(bootstrap: str, plan: DemoPlan) -> int:
    sent = 0
    with CostEventPublisher(bootstrap) as pub:
        for event in demo_events(plan):
            pub.publish(event)
            sent += 1
        assert pub.flush() == 0
    return sent


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())
