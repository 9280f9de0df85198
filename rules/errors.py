"""Errors of the rule layer."""

from __future__ import annotations

from dataclasses import dataclass

from spendfuse.schemas.errors import SpendfuseError


class RuleConfigError(SpendfuseError):
    """A rule or its settings are invalid."""


@dataclass(frozen=True, slots=True)
class RuleIssue:
    """One problem in a rule file, located so an editor can jump to it."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        text = f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"
        return f"{text} (hint: {self.hint})" if self.hint else text


class RuleFileError(RuleConfigError):
    """One or more rule files did not validate; ``issues`` lists every error found."""

    def __init__(self, issues: list[RuleIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class SilenceError(SpendfuseError):
    """A silence is invalid (bad matcher, no expiry, unknown id)."""
