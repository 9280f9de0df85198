"""Silences: runtime objects (matchers, required expiry, author, comment), not rule-file YAML.

Created from the CLI (``spendfuse silence add``) and kept as plain JSON by the caller (see
``spendfuse.silence_store``); this module is the pure part: validating, matching, expiring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendfuse.rules.ids import stable_id
from spendfuse.rules.matchers import MatcherList, matches_all, parse_matcher
from spendfuse.schemas.common import UtcDatetime


class Silence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    matchers: MatcherList = Field(min_length=1)
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)

    @model_validator(mode="after")
    def _expires(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("a silence must end after it starts")
        return self

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: Mapping[str, str]) -> bool:
        return matches_all([parse_matcher(m) for m in self.matchers], labels)


def new_silence(
    matchers: list[str], duration: timedelta, created_by: str, comment: str, now: datetime
) -> Silence:
    sid = stable_id("silence", *matchers, created_by, now.isoformat())
    return Silence(
        id=sid,
        matchers=matchers,
        starts_at=now,
        ends_at=now + duration,
        created_by=created_by,
        comment=comment,
    )


def silenced_by(
    labels: Mapping[str, str], silences: Iterable[Silence], now: datetime
) -> Silence | None:
    """The first active silence matching ``labels``, if any."""
    return next((s for s in silences if s.active(now) and s.matches(labels)), None)


def expire(silences: list[Silence], silence_id: str, now: datetime) -> list[Silence]:
    """End a silence now (kept, for the record); unknown ids raise ``KeyError``."""
    if not any(s.id == silence_id for s in silences):
        raise KeyError(silence_id)
    return [
        s.model_copy(update={"ends_at": max(now, s.starts_at + timedelta(microseconds=1))})
        if s.id == silence_id and s.ends_at > now
        else s
        for s in silences
    ]
