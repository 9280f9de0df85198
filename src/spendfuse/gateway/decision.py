"""What ``decide`` answers: allow, deny with a reason, or degrade with parameters.

Decisions are built once, when a command is applied, and shared by every request it matches, so
``decide`` allocates nothing. What each degradation level means for a request:

* L1: ``model_tier`` small, ``cache_first``, ``max_output_tokens`` (a degrade);
* L2: ``spillover`` to on-demand capacity (a degrade); batch and sandbox requests are paused;
* L3: ``model_tier`` approved_fallback (a degrade); batch and sandbox requests are paused;
* L4: ``scaling_stopped`` and ``manual_workflow``: every request it reaches is refused, to be
  done through the manual workflow.

A paused request (its ``workload`` is ``batch`` or ``sandbox``, or its ``environment`` is
``sandbox``) is a ``deny`` whose ``paused`` names the workload: queue it and retry once the
command is lifted or expires (``expires_at_s``). ``handoff_to_human`` says that the task a
command stops (a looping agent of medium risk or above) goes to a human.
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
    paused: str | None = None  # the workload (batch, sandbox) this denial pauses
    manual_workflow: bool = False  # L4: do this through the manual workflow, not the model
    scaling_stopped: bool = False  # L4: add no capacity for this traffic
    handoff_to_human: bool = False  # the stopped task is handed to a human

    @property
    def allowed(self) -> bool:
        """False only for ``deny``: a degraded request still goes ahead, with ``params``."""
        return self.action != "deny"

    @property
    def model_tier(self) -> str | None:
        """``small`` (L1) or ``approved_fallback`` (L3): the model to route a degraded call to."""
        return self.params.get("model_tier")

    @property
    def max_output_tokens(self) -> int | None:
        return self.params.get("max_output_tokens")

    @property
    def cache_first(self) -> bool:
        return bool(self.params.get("cache_first"))

    @property
    def spillover(self) -> bool:
        """L2: send the call to on-demand capacity rather than queue it on the reserved pool."""
        return bool(self.params.get("spillover"))


ALLOW = Decision("allow")
# What the fail modes answer when the client has no fresh state (spendfuse.gateway.client).
ALLOW_UNAVAILABLE = Decision("allow", "spendfuse control state unavailable (fail_mode: open)")
DENY_UNAVAILABLE = Decision("deny", "spendfuse control state unavailable (fail_mode: closed)")
