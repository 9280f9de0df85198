"""Errors of the gateway client."""

from __future__ import annotations

from spendfuse.schemas.errors import SpendfuseError


class GatewayError(SpendfuseError):
    """Base of the gateway client's errors."""


class GatewayNotReadyError(GatewayError):
    """The client could not load the control topic's state in time; it must not report ready."""
