"""Wire contracts: the cost event, alert, control command and dead letter, their codec and topics.

Pure: imports pydantic and orjson only (and genai-prices, lazily, to price events).
"""

from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import decode, decode_cost_event, encode, make_dead_letter
from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    DegradeParams,
    Target,
    TargetType,
)
from spendfuse.schemas.common import (
    AllocationMethod,
    Component,
    DegradationLevel,
    Environment,
    RiskTier,
    Severity,
)
from spendfuse.schemas.cost_event import CostEvent, PricingStatus
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError, SpendfuseError

__all__ = [
    "Alert",
    "AllocationMethod",
    "CommandKind",
    "Component",
    "ControlCommand",
    "CostEvent",
    "DeadLetter",
    "DegradationLevel",
    "DegradeParams",
    "Environment",
    "EventRejectedError",
    "Evidence",
    "PricingStatus",
    "RiskTier",
    "Severity",
    "SpendfuseError",
    "Target",
    "TargetType",
    "decode",
    "decode_cost_event",
    "encode",
    "make_dead_letter",
]
