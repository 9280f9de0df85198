"""Receivers: where a group's notifications go. One module per kind, found by discovery.

A receiver module defines ``KIND`` (its name in the ledger and metrics) and
``build(name, spec, ctx) -> Receiver | None``: the integration for receiver ``name`` (its rule
file ``spec``, None for the built-in ones), or None when that receiver does not use this kind.
Adding a receiver is adding one file here; its settings go in the receiver's rule file entry.

``Receiver.send`` delivers one :class:`~spendfuse.rules.grouping.Notification` and returns the
group's thread state (where its message lives, so the next send updates it), or raises
:class:`DeliveryError` with a short ``reason`` (``ratelimited``, ``http_503``,
``channel_not_found``...). The dispatcher retries every error with backoff, as long as it takes.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import ReceiverSpec
from spendfuse.schemas.errors import SpendfuseError
from spendfuse.settings import Settings


class DeliveryError(SpendfuseError):
    """A receiver did not take a notification. ``thread`` keeps what did land (a posted
    message whose thread reply failed), so the retry updates it instead of posting again."""

    def __init__(
        self,
        reason: str,
        detail: str = "",
        *,
        retry_after_s: float | None = None,
        thread: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.thread = thread


class Receiver(Protocol):
    kind: str

    def send(self, note: Notification) -> dict[str, Any]: ...


@dataclass(slots=True)
class ReceiverContext:
    """What receivers may use: settings, and the lift hints of commands seen on the control
    topic (command id -> ``how_to_lift``), so a message names the command's real target."""

    settings: Settings
    lift_hints: Mapping[str, str] = field(default_factory=dict)
    environ: Mapping[str, str] = field(default_factory=dict)


UNCONFIGURED = "unconfigured"
Builder = Callable[[str, ReceiverSpec | None, ReceiverContext], Receiver | None]


def discover() -> dict[str, ModuleType]:
    """Every receiver module in this package, by ``KIND``."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if kind and callable(getattr(module, "build", None)):
            found[kind] = module
    return found


class Registry:
    """The receivers of one rule set: ``integrations(name)`` lists a receiver's kinds (what the
    dispatcher groups by) and ``get(name, kind)`` builds each once."""

    def __init__(
        self,
        receivers: Mapping[str, ReceiverSpec],
        ctx: ReceiverContext,
        modules: Mapping[str, ModuleType] | None = None,
    ) -> None:
        self.receivers = receivers
        self.ctx = ctx
        self.modules = modules if modules is not None else discover()
        self._built: dict[str, dict[str, Receiver]] = {}

    def _build(self, name: str) -> dict[str, Receiver]:
        if name not in self._built:
            spec = self.receivers.get(name)
            built = {}
            for kind, module in sorted(self.modules.items()):
                receiver = module.build(name, spec, self.ctx)
                if receiver is not None:
                    built[kind] = receiver
            self._built[name] = built
        return self._built[name]

    def integrations(self, name: str) -> list[str]:
        """The kinds receiver ``name`` delivers by; ``["unconfigured"]`` when none applies (no
        token, console off), so its alerts are held and alerted on rather than dropped."""
        return list(self._build(name)) or [UNCONFIGURED]

    def get(self, name: str, kind: str) -> Receiver | None:
        return self._build(name).get(kind)
