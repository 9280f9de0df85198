"""The dead letter: a refused input record, its original bytes and why it was refused."""

from __future__ import annotations

import base64
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from spendfuse.schemas.common import UtcDatetime


class SourcePosition(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str | None = None
    partition: int | None = None
    offset: int | None = None
    index: int | None = Field(
        default=None, description="The event's position in an envelope record, if it was one."
    )


class DeadLetter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    reason: str = Field(
        description="A reason code, e.g. oversized, invalid_json, non_finite_number, "
        "event_time_out_of_range (all of them: spendfuse.schemas.codec.REJECTION_REASONS)."
    )
    field: str | None = Field(default=None, description="The offending field, when there is one.")
    error: str = Field(description="What was wrong and how to fix it.")
    rejected_at: UtcDatetime
    source: SourcePosition = Field(default_factory=SourcePosition)
    key_b64: str | None = None
    original_b64: str = Field(
        description="The record's value exactly as received, base64 (its first 256 KiB if it "
        "was longer; the error then says so)."
    )

    @property
    def original(self) -> bytes:
        return base64.b64decode(self.original_b64)
