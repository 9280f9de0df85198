"""What ``decide`` answers: allow, deny with a reason, or degrade with parameters.

Decisions are built once, when a command is applied, and shared by every request it matches, so
``decide`` allocates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

Action = Literal["allow", "deny", "degrade"]
_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True, eq=False)
class Decision:
    action: Action
    reason: str = ""
    level: str | None = None
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    target: str | None = None
    command_id: str | None = None
    issued_by: str | None = None
    expires_at_s: float | None = None
    how_to_lift: str | None = None
    version: int | None = None

    @property
    def allowed(self) -> bool:
        """False only for ``deny``: a degraded request still goes ahead, with ``params``."""
        return self.action != "deny"


ALLOW = Decision("allow")
# What the fail modes answer when the client has no fresh state (spendfuse.gateway.client).
ALLOW_UNAVAILABLE = Decision("allow", "spendfuse control state unavailable (fail_mode: open)")
DENY_UNAVAILABLE = Decision("deny", "spendfuse control state unavailable (fail_mode: closed)")
