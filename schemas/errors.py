"""Errors raised by the wire contracts.

Every package has one ``errors.py`` under the common :class:`SpendfuseError` base, so callers can
catch "anything spendfuse refused" without catching programming errors.
"""

from __future__ import annotations


class SpendfuseError(Exception):
    """Base of every error spendfuse raises on purpose."""


class EventRejectedError(SpendfuseError):
    """A cost event was refused; it goes to the dead-letter topic with this reason.

    ``reason`` is a short machine-readable code (``oversized``, ``invalid_json``,
    ``non_finite_number``, ``event_time_out_of_range``, ...: the full list is
    ``spendfuse.schemas.codec.REJECTION_REASONS``); ``field`` names the offending field when there
    is one, and ``message`` says what was expected and how to fix it.
    """

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.field = field
        self.message = message
