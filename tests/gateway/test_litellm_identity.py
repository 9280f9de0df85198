"""The LiteLLM hook takes tenant and use case from the proxy's authenticated key, not from what
the client puts in its request metadata (a client must not dodge a kill or misattribute spend).

The decision comes from a real gateway state with a signed command applied; LiteLLM's own
``UserAPIKeyAuth`` is what the proxy passes to the pre-call hook.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices

import pytest
from litellm.proxy._types import UserAPIKeyAuth

from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.control.stamp import CommandSigner
from spendfuse.gateway.state import ControlState
from spendfuse.integrations.litellm import SpendfuseDeniedError, SpendfuseLiteLLMCallback
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType

SIGNER = parse_signer(generate_ed25519_spec())


class StateClient:
    """The part of ControlClient the hook uses, over a real (loaded) ControlState."""

    def __init__(self, state: ControlState) -> None:
        self.state = state

    def decide(self, request: Any) -> Any:
        return self.state.decide(request, time.time())


@pytest.fixture
def client() -> StateClient:
    state = ControlState(Verifier([SIGNER.verify_key_spec()]))
    kill = ControlCommand(
        command_id="k1",
        kind=CommandKind.KILL_SWITCH,
        target=Target(type=TargetType.USE_CASE, id="support-bot"),
        issued_by="rule:t",
        reason="runaway",
        issued_at=datetime.now(UTC),
        ttl_s=600,
    )
    key, value, headers = CommandSigner(SIGNER).records(kill)[0]
    assert state.apply_record(key, value, headers[0][1], time.time()) == "applied"
    return StateClient(state)


KEY = UserAPIKeyAuth(
    api_key="sk-test",
    team_id="team-1",
    metadata={"tenant_id": "acme", "use_case_id": "support-bot"},
    team_metadata={"risk_tier": "low", "environment": "prod"},
)


async def test_client_metadata_cannot_dodge_a_kill_on_its_key(client: StateClient) -> None:
    hook = SpendfuseLiteLLMCallback(client)
    data = {
        "model": "gpt-4o",
        "metadata": {"use_case_id": "innocent", "tenant_id": "other", "risk_tier": "low"},
    }
    with pytest.raises(SpendfuseDeniedError):
        await hook.async_pre_call_hook(KEY, None, data, "completion")
    assert hook.attributes(data, KEY)["use_case_id"] == "support-bot"
    assert hook.attributes(data, KEY)["tenant_id"] == "acme"


async def test_client_metadata_cannot_claim_a_killed_use_case_either(client: StateClient) -> None:
    hook = SpendfuseLiteLLMCallback(client)
    other_key = UserAPIKeyAuth(
        api_key="sk-2", metadata={"tenant_id": "acme", "use_case_id": "faq", "risk_tier": "low"}
    )
    data = {"model": "gpt-4o", "metadata": {"use_case_id": "support-bot"}}
    assert await hook.async_pre_call_hook(other_key, None, data, "completion") is data


def test_cost_event_is_charged_to_the_authenticated_key(client: StateClient) -> None:
    hook = SpendfuseLiteLLMCallback(client)
    # what the proxy leaves in the request: its own copy of the key's metadata over the client's
    kwargs = {
        "model": "gpt-4o",
        "litellm_call_id": "c1",
        "response_cost": 0.01,
        "litellm_params": {
            "metadata": {
                "use_case_id": "innocent",
                "user_api_key_metadata": KEY.metadata,
                "user_api_key_team_metadata": KEY.team_metadata,
            }
        },
    }
    event = hook.cost_event(kwargs, None, datetime.now(UTC))
    assert (event["tenant_id"], event["use_case_id"], event["risk_tier"]) == (
        "acme",
        "support-bot",
        "low",
    )


def test_request_metadata_is_used_only_when_explicitly_trusted(client: StateClient) -> None:
    data = {"model": "gpt-4o", "metadata": {"use_case_id": "support-bot", "tenant_id": "acme"}}
    assert SpendfuseLiteLLMCallback(client).identity(data)["use_case_id"] is None
    trusted = SpendfuseLiteLLMCallback(
        client, trust_request_metadata=True, defaults={"risk_tier": "low"}
    )
    assert trusted.identity(data) == {
        "tenant_id": "acme",
        "use_case_id": "support-bot",
        "risk_tier": "low",
        "environment": None,
    }
    with pytest.raises(SpendfuseDeniedError):
        trusted.apply(data)
