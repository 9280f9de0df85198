"""The loop guard stops the looping task at every risk tier; from medium risk up, its command
also hands the task to a human (gateways surface it in the denial)."""

from __future__ import annotations

import pytest

from spendfuse.schemas.command import TargetType
from tests.rules.support import run
from tests.support.events import make_event


@pytest.mark.parametrize(
    ("tier", "handoff"), [("low", False), ("medium", True), ("high", True), ("critical", True)]
)
def test_agent_step_limit_trace_kill_hands_off_from_medium_risk(tier: str, handoff: bool) -> None:
    events = [
        make_event("agent", trace_id="t", risk_tier=tier, step_number=n, seconds=n)
        for n in range(1, 12)
    ]
    commands = run(events).of("agent_step_limit").commands
    assert [(c.kind.value, c.target.type, c.target.id) for c in commands] == [
        ("kill_switch", TargetType.TRACE, "t")
    ]
    assert commands[0].risk_protection
    assert commands[0].handoff_to_human is handoff
