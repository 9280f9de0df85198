"""The gateway client: embed in an AI gateway to apply spendfuse's kill switches and degradations.

    from spendfuse.gateway import ControlClient, GatewaySettings
    client = ControlClient.from_settings().start()      # ready once the state in force is loaded
    decision = client.decide({"tenant_id": "acme", "use_case_id": "support-bot", "model": "gpt-4o"})
    if not decision.allowed: refuse(decision.reason)
    elif decision.action == "degrade": apply(decision.params)

Imports only spendfuse.schemas, the signing module and confluent-kafka; names load lazily so that
importing the package costs nothing until a client is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spendfuse.gateway.client import ControlClient
    from spendfuse.gateway.config import GatewaySettings
    from spendfuse.gateway.decision import ALLOW, Decision
    from spendfuse.gateway.state import ControlState

_EXPORTS = {
    "ControlClient": "spendfuse.gateway.client",
    "GatewaySettings": "spendfuse.gateway.config",
    "ALLOW": "spendfuse.gateway.decision",
    "Decision": "spendfuse.gateway.decision",
    "ControlState": "spendfuse.gateway.state",
}
__all__ = ["ALLOW", "ControlClient", "ControlState", "Decision", "GatewaySettings"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(module), name)
