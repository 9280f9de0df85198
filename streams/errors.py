"""Errors of the streaming layer."""

from __future__ import annotations

from spendfuse.schemas.errors import SpendfuseError


class StreamSetupError(SpendfuseError):
    """The worker could not set up its topics or connect to Kafka."""
