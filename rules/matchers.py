"""Alertmanager-style label matchers: ``name="v"``, ``name!="v"``, ``name=~"re"``, ``name!~"re"``.

Used by rule scopes, routes, inhibition rules and silences, so one syntax covers all four.
Regexes are anchored, as in Alertmanager, and run on RE2 (``google-re2``), as Alertmanager's Go
regexes do: matching takes time linear in the label's length whatever the pattern, so a rule
like ``(a|aa)+`` cannot stall the worker on a long value. A pattern RE2 refuses (a
backreference, a lookahead, a syntax error) is a load-time error naming the matcher, which the
rule loader reports at its file:line:column. Scope values (``use_case_id: bot(v2``) are
literals: :func:`any_of` escapes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

import re2
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


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # the error is raised (and reported); not printed to stderr


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _RE2_OPTIONS)


def _re2_problem(exc: Exception) -> str:
    why = exc.args[0] if exc.args else exc
    return why.decode(errors="replace") if isinstance(why, bytes) else str(why)


def any_of(name: str, values: Iterable[str]) -> Matcher:
    """A matcher for "``name`` is one of ``values``", each value a literal string."""
    return Matcher(name, "=~", "|".join(re2.escape(str(v)) for v in values))


def parse_matcher(text: str) -> Matcher:
    match = _MATCHER.match(text)
    if match is None:
        raise ValueError(f"bad matcher {text!r}")
    name, op, value = match.groups()
    if op in ("=~", "!~"):
        try:
            _compiled(value)
        except re2.error as exc:
            raise ValueError(
                f"bad regex in matcher {text!r}: {_re2_problem(exc)} (matchers use RE2 syntax: "
                "no backreferences or lookarounds)"
            ) from exc
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
