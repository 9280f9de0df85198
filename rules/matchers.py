"""Alertmanager-style label matchers: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Used by rule scopes, routes, inhibition rules and silences, so one syntax covers all four.
Regexes are anchored, as in Alertmanager.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from pydantic import AfterValidator

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$')
MATCHER_HINT = 'write label="value", label!="value", label=~"regex" or label!~"regex"'


@dataclass(frozen=True, slots=True)
class Matcher:
    name: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        got = labels.get(self.name, "")
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = _compiled(self.value).fullmatch(got) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.name}{self.op}"{self.value}"'


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(f"bad matcher {text!r}")
    name, op, value = match.groups()
    if op in ("=~", "!~"):
        try:
            _compiled(value)
        except re.error as exc:
            raise ValueError(f"bad regex in matcher {text!r}: {exc}") from exc
    return Matcher(name, op, value)


def matches_all(matchers: list[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def check_matchers(value: list[str]) -> list[str]:
    """Validate every matcher string (raises ``ValueError`` naming the bad one)."""
    for text in value:
        parse_matcher(text)
    return value


MatcherList = Annotated[list[str], AfterValidator(check_matchers)]
"""A list of Alertmanager-style matcher strings, validated where a model declares it."""
