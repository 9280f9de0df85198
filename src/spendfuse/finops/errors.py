"""Errors of the FinOps package, under the common :class:`SpendfuseError` base."""

from __future__ import annotations

from spendfuse.schemas.errors import SpendfuseError


class FinopsError(SpendfuseError):
    """Base of the errors raised by :mod:`spendfuse.finops`."""


class ConfigFileError(FinopsError):
    """A price book or allocation file could not be read or is invalid.

    ``problems`` holds one ``path:line:column loc: message`` line per problem found.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__("\n".join(problems) if problems else f"{path}: invalid")
        self.path = path
        self.problems = problems


class RollupInputError(FinopsError):
    """A rollup record or events file line could not be read (the message names the line)."""
