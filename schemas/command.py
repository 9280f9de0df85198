"""The control command: what gateways apply, published on the log-compacted ``spendfuse.control``.

The topic is keyed by :meth:`ControlCommand.key` (``"<target type>:<target id>"``) so that, after
compaction, the latest command per target is the state in force: a gateway that (re)starts reads
the topic from the beginning and knows at once what is killed or degraded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from spendfuse.schemas.alert import Evidence
from spendfuse.schemas.common import DegradationLevel, UtcDatetime


class CommandKind(StrEnum):
    KILL_SWITCH = "kill_switch"
    DEGRADE = "degrade"
    RESTORE = "restore"


class TargetType(StrEnum):
    MODEL = "model"
    PROMPT = "prompt"
    TENANT = "tenant"
    USE_CASE = "use_case"
    TOOL = "tool"
    ROUTE_POLICY = "route_policy"


class Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: TargetType
    id: str = Field(min_length=1)

    @property
    def key(self) -> str:
        return f"{self.type.value}:{self.id}"


class DegradeParams(BaseModel):
    """What a gateway changes at a degradation level (unset means "leave as is")."""

    model_config = ConfigDict(extra="forbid")

    cache_first: bool | None = None
    model_tier: Literal["small", "standard", "approved_fallback"] | None = None
    max_output_tokens: int | None = Field(default=None, gt=0)
    pause_batch: bool | None = None
    pause_sandbox: bool | None = None
    spillover: bool | None = None


class ControlCommand(BaseModel):
    model_config = ConfigDict(extra="allow")

    schema_version: Literal[1] = 1
    command_id: str = Field(description="Deterministic per decision, so re-issuing is idempotent.")
    kind: CommandKind
    mode: Literal["enforce", "shadow"] = "enforce"
    target: Target
    level: DegradationLevel | None = None
    params: DegradeParams = Field(default_factory=DegradeParams)
    issued_by: str = Field(description='"rule:<name>" or "operator:<who>".')
    reason: str
    evidence: Evidence | None = None
    tenant_id: str | None = None
    use_case_id: str | None = None
    alert_fingerprint: str | None = None
    issued_at: UtcDatetime
    expires_at: UtcDatetime | None = None
    how_to_lift: str | None = None
    # Signatures travel in the record's `spendfuse-signature` header, over the exact key and
    # value bytes (spendfuse.control.signing), so the body needs no canonical form.

    def key(self) -> str:
        return self.target.key
