"""What each degradation level (L1-L4) and a hand-off mean at the gateway: ``decide`` over a
real, signed ControlState, the LiteLLM hook's rewrite or refusal, and the demo gateway."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litellm.proxy._types import UserAPIKeyAuth

from spendfuse.control.publish import encode_signed
from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.demo.gateway import FALLBACK_MODEL, SMALL_MODEL, DemoGateway
from spendfuse.gateway.state import ControlState
from spendfuse.integrations.litellm import (
    SpendfuseDeniedError,
    SpendfuseLiteLLMCallback,
    SpendfusePausedError,
)
from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    DegradeParams,
    Target,
    TargetType,
    level_params,
)
from spendfuse.schemas.common import DegradationLevel

SIGNER = parse_signer(generate_ed25519_spec())
UC = "support-bot"
REQ = {"tenant_id": "acme", "use_case_id": UC, "model": "gpt-4o", "risk_tier": "low"}


def command(
    kind: str = "degrade", level: str | None = None, target: str = f"use_case:{UC}", **kw: Any
) -> ControlCommand:
    ttype, tid = target.split(":", 1)
    now = datetime.now(UTC)
    return ControlCommand(
        command_id=f"{target}-{kind}-{level}-{time.monotonic_ns()}",
        kind=CommandKind(kind),
        target=Target(type=TargetType(ttype), id=tid),
        level=DegradationLevel(level) if level else None,
        issued_by="operator:alice",
        reason="test",
        issued_at=now,
        expires_at=now + timedelta(minutes=10),
        **kw,
    )


def loaded(*commands: ControlCommand) -> ControlState:
    state = ControlState(Verifier([SIGNER.verify_key_spec()]))
    for cmd in commands:
        key, value, headers = encode_signed(cmd, SIGNER)
        assert state.apply_record(key, value, headers[0][1], time.time()) == "applied"
    return state


def decide(state: ControlState, **extra: Any):
    return state.decide({**REQ, **extra}, time.time())


# -- decide(): what each level means for a request ---------------------------------------------
def test_l1_small_model_cache_first_and_an_output_cap() -> None:
    state = loaded(command(level="L1"))
    d = decide(state)
    assert (d.action, d.level, d.model_tier, d.cache_first, d.max_output_tokens) == (
        "degrade",
        "L1",
        "small",
        True,
        512,
    )
    assert decide(state, workload="batch").action == "degrade"  # L1 pauses nothing


def test_l2_spills_over_and_pauses_batch_and_sandbox() -> None:
    state = loaded(command(level="L2"))
    d = decide(state, workload="interactive")
    assert d.action == "degrade" and d.spillover and d.model_tier is None
    batch = decide(state, workload="batch")
    assert (batch.action, batch.paused, batch.level) == ("deny", "batch", "L2")
    assert "batch paused at L2 on use_case:support-bot" in batch.reason
    assert "retry" in batch.reason
    sandbox = decide(state, environment="sandbox")
    assert (sandbox.action, sandbox.paused) == ("deny", "sandbox")
    assert decide(state, workload="sandbox").paused == "sandbox"


def test_l3_approved_fallback_and_pauses_sandbox_and_batch() -> None:
    state = loaded(command(level="L3"))
    d = decide(state)
    assert (d.action, d.model_tier, d.spillover) == ("degrade", "approved_fallback", False)
    assert decide(state, workload="batch").paused == "batch"
    assert decide(state, environment="sandbox").paused == "sandbox"


def test_l4_stops_scaling_and_forces_the_manual_workflow() -> None:
    state = loaded(command(level="L4", risk_protection=True))
    for req in ({}, {"risk_tier": "high"}, {"workload": "batch"}):
        d = decide(state, **req)
        assert (d.action, d.level, d.manual_workflow, d.scaling_stopped) == (
            "deny",
            "L4",
            True,
            True,
        )
        assert "manual workflow forced at L4" in d.reason


def test_the_level_applies_even_when_the_command_carries_no_params() -> None:
    # a command from an older publisher that only names its level still means that level
    state = loaded(command(level="L4", risk_protection=True, params=DegradeParams()))
    assert decide(state).manual_workflow
    # explicit params are applied over the level's
    state = loaded(command(level="L1", params=DegradeParams(max_output_tokens=64)))
    assert decide(state).max_output_tokens == 64 and decide(state).cache_first


def test_a_pause_is_a_deny_and_beats_a_stronger_degrade_that_does_not_pause() -> None:
    state = loaded(
        command(level="L2", target="tenant:acme"),
        command(level="L3", params=DegradeParams(pause_batch=False, pause_sandbox=False)),
    )
    assert decide(state).level == "L3"  # strongest degrade for an interactive request
    assert decide(state, workload="batch").paused == "batch"  # the tenant's L2 pause
    killed = loaded(command(level="L2"), command("kill_switch", target="tenant:acme"))
    assert decide(killed, workload="batch").reason.startswith("kill switch on tenant:acme")


def test_cost_driven_levels_never_reach_a_request_that_is_not_low_risk() -> None:
    state = loaded(command(level="L2"), command(level="L4", target="model:gpt-4o"))
    assert decide(state, risk_tier="medium", workload="batch").action == "allow"


def test_a_stopped_task_handed_to_a_human_says_so() -> None:
    stop = command("kill_switch", target="trace:t-42", risk_protection=True, handoff_to_human=True)
    d = decide(loaded(stop), trace_id="t-42", risk_tier="medium")
    assert d.action == "deny" and d.handoff_to_human
    assert "handed to a human" in d.reason
    quiet = command("kill_switch", target="trace:t-43", risk_protection=True)
    assert not decide(loaded(quiet), trace_id="t-43").handoff_to_human


# -- the LiteLLM hook applies each level -------------------------------------------------------
class StateClient:
    """The part of ControlClient the hook uses, over a real (loaded) ControlState."""

    def __init__(self, state: ControlState) -> None:
        self.state = state

    def decide(self, request: Any) -> Any:
        return self.state.decide(request, time.time())


def hook(*commands: ControlCommand, **kw: Any) -> SpendfuseLiteLLMCallback:
    return SpendfuseLiteLLMCallback(
        StateClient(loaded(*commands)),
        defaults={"tenant_id": "acme", "risk_tier": "low", "environment": "prod"},
        small_model="gpt-4o-mini",
        trust_request_metadata=True,
        **kw,
    )


def call(**meta: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "max_tokens": 2000, "metadata": {"use_case_id": UC, **meta}}


def test_hook_l1_small_model_capped_and_cached() -> None:
    out = hook(command(level="L1")).apply(call())
    assert (out["model"], out["max_tokens"], out["caching"]) == ("gpt-4o-mini", 512, True)
    assert out["metadata"]["spendfuse_degraded"] == "L1"


def test_hook_l2_spills_over_and_pauses_batch() -> None:
    h = hook(command(level="L2"), spillover_model="gpt-4o-ondemand")
    out = h.apply(call())
    assert out["model"] == "gpt-4o-ondemand" and out["metadata"]["spendfuse_spillover"]
    with pytest.raises(SpendfusePausedError, match="batch paused at L2") as info:
        h.apply(call(workload="batch"))
    assert info.value.workload == "batch"
    untagged = hook(command(level="L2")).apply(call())  # no on-demand model: tagged for routing
    assert untagged["model"] == "gpt-4o" and untagged["metadata"]["spendfuse_spillover"]


def test_hook_a_batch_key_stays_paused_whatever_its_calls_say() -> None:
    key = UserAPIKeyAuth(api_key="sk-batch", metadata={"workload": "batch"})
    with pytest.raises(SpendfusePausedError):
        hook(command(level="L2")).apply(call(workload="interactive"), key)


def test_hook_l3_routes_to_the_approved_fallback_or_refuses() -> None:
    out = hook(command(level="L3"), fallback_model="claude-approved").apply(call())
    assert out["model"] == "claude-approved"
    with pytest.raises(SpendfuseDeniedError, match="no approved fallback model is configured"):
        hook(command(level="L3")).apply(call())
    with pytest.raises(SpendfusePausedError, match="sandbox paused at L3"):
        hook(command(level="L3"), fallback_model="claude-approved").apply(call(workload="sandbox"))


def test_hook_l4_refuses_for_the_manual_workflow() -> None:
    with pytest.raises(SpendfuseDeniedError, match="manual workflow forced") as info:
        hook(command(level="L4", risk_protection=True)).apply(call())
    assert info.value.manual_workflow and info.value.decision.scaling_stopped


def test_hook_denial_surfaces_the_hand_off() -> None:
    stop = command("kill_switch", target="trace:t-9", risk_protection=True, handoff_to_human=True)
    with pytest.raises(SpendfuseDeniedError, match="handed to a human") as info:
        hook(stop).apply(call(trace_id="t-9"))
    assert info.value.handoff_to_human


# -- the demo gateway applies each level -------------------------------------------------------
EVENT = {
    "use_case_id": UC,
    "component": "model_call",
    "trace_id": "t-1",
    "model_or_service": "gpt-4o",
    "output_tokens": 2000,
}


@pytest.mark.parametrize(
    ("level", "interactive", "batch"),
    [
        ("L1", {"model_or_service": SMALL_MODEL, "output_tokens": 512}, "degraded"),
        ("L2", {"capacity": "on_demand"}, None),
        ("L3", {"model_or_service": FALLBACK_MODEL}, None),
        ("L4", None, None),
    ],
)
def test_demo_gateway_applies_each_level(
    level: str, interactive: dict[str, Any] | None, batch: str | None
) -> None:
    gw = DemoGateway()
    gw.apply(command(level=level, params=level_params(level)))
    now = datetime.now(UTC)
    got = gw.admit(dict(EVENT), now)
    if interactive is None:
        assert got is None and gw.manual_workflow == 1
    else:
        assert got is not None and {k: got[k] for k in interactive} == interactive
    batch_got = gw.admit({**EVENT, "workload": "batch"}, now)
    assert (batch_got is not None) == (batch == "degraded")
    if level in ("L2", "L3"):
        assert gw.paused == 1
