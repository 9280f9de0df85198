"""Errors of the control path (keys, signatures, publishing commands)."""

from __future__ import annotations

from spendfuse.schemas.errors import SpendfuseError


class ControlError(SpendfuseError):
    """Base of the control path's errors."""


class KeyConfigError(ControlError):
    """A signing or verify key is missing or malformed; the message says which and how to fix it.

    The message never contains key material.
    """


class CommandPublishError(ControlError):
    """A command could not be delivered to the control topic."""
