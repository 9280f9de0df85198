"""The LiteLLM hook on the real broker: decide before each call, a priced cost event after it.

LiteLLM runs for real (its async client, callbacks, cost calculator and the bundled price map);
only the provider's answer is LiteLLM's own ``mock_response``, as no provider is reachable here.
"""

from __future__ import annotations

import asyncio
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network fetch of prices

import litellm
import pytest

from spendfuse.control.publish import publish_commands
from spendfuse.control.signing import Signer
from spendfuse.integrations.litellm import SpendfuseDeniedError, SpendfuseLiteLLMCallback
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.schemas.command import CommandKind, DegradeParams, Target, TargetType
from tests.support.events import unique
from tests.support.kafka import consume_until
from tests.support.waiting import wait_for

MESSAGES = [{"role": "user", "content": "Summarise my last ten tickets"}]


def _signed(kind: str, use_case: str, **kw):
    from datetime import UTC, datetime, timedelta

    from spendfuse.schemas.command import ControlCommand

    now = datetime.now(UTC)
    return ControlCommand(
        command_id=unique("cmd"),
        kind=CommandKind(kind),
        target=Target(type=TargetType.USE_CASE, id=use_case),
        issued_by="operator:test",
        reason="litellm test",
        issued_at=now,
        expires_at=now + timedelta(minutes=10),
        **kw,
    )


@pytest.fixture
def hook(kafka_bootstrap: str, make_client) -> SpendfuseLiteLLMCallback:
    publisher = CostEventPublisher(kafka_bootstrap)
    cb = SpendfuseLiteLLMCallback(
        make_client(),
        publisher,
        small_model="gpt-4o-mini",
        defaults={"tenant_id": "acme", "risk_tier": "low", "environment": "prod"},
        trust_request_metadata=True,  # the SDK: the metadata is the calling code's own
    )
    previous = litellm.callbacks
    litellm.callbacks = [cb]
    yield cb
    litellm.callbacks = previous
    publisher.close()


async def test_litellm_calls_are_denied_degraded_or_allowed_and_costed(
    kafka_bootstrap: str, signer: Signer, hook: SpendfuseLiteLLMCallback
) -> None:
    killed, degraded, fine = unique("killed"), unique("degraded"), unique("fine")
    publish_commands(
        kafka_bootstrap,
        [
            _signed("kill_switch", killed),
            _signed(
                "degrade",
                degraded,
                level="L1",
                params=DegradeParams(model_tier="small", max_output_tokens=64),
            ),
        ],
        signer,
    )
    wait_for(lambda: hook.client.decide({"use_case_id": degraded}).action == "degrade", "state")

    with pytest.raises(SpendfuseDeniedError, match=f"kill switch on use_case:{killed}"):
        await litellm.acompletion(
            model="gpt-4o", messages=MESSAGES, mock_response="no", metadata={"use_case_id": killed}
        )
    small = await litellm.acompletion(
        model="gpt-4o",
        messages=MESSAGES,
        max_tokens=1000,
        mock_response="short answer",
        metadata={"use_case_id": degraded},
    )
    full = await litellm.acompletion(
        model="gpt-4o",
        messages=MESSAGES,
        mock_response="a full answer",
        metadata={"use_case_id": fine},
    )
    assert small.model.endswith("gpt-4o-mini") and full.model.endswith("gpt-4o")
    for _ in range(200):  # LiteLLM logs success in a background task
        if hook.published >= 2:
            break
        await asyncio.sleep(0.05)

    events = consume_until(
        kafka_bootstrap,
        topics.COST_EVENTS,
        lambda r: len(r) >= 2,
        match=lambda r: r.get("use_case_id") in (degraded, fine, killed),
    )
    by_uc = {e["use_case_id"]: e for e in events}
    assert set(by_uc) == {degraded, fine}  # the denied call cost nothing and sent nothing
    assert by_uc[fine]["model_or_service"] == "gpt-4o"
    assert by_uc[degraded]["model_or_service"] == "gpt-4o-mini"
    for e in by_uc.values():
        assert e["allocated_cost_usd"] > 0 and e["pricing_version"].startswith("litellm-")
        assert e["tenant_id"] == "acme" and e["input_tokens"] > 0 and e["output_tokens"] > 0
    assert by_uc[fine]["allocated_cost_usd"] > by_uc[degraded]["allocated_cost_usd"]
