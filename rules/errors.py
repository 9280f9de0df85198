"""Errors of the rule layer."""

from __future__ import annotations

from spendfuse.schemas.errors import SpendfuseError


class RuleConfigError(SpendfuseError):
    """A rule or its settings are invalid."""
