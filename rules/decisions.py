"""What the engine returns for one event: alerts and commands to publish."""

from __future__ import annotations

from dataclasses import dataclass, field

from spendfuse.schemas.alert import Alert
from spendfuse.schemas.command import ControlCommand


@dataclass(slots=True)
class Decisions:
    alerts: list[Alert] = field(default_factory=list)
    commands: list[ControlCommand] = field(default_factory=list)

    def extend(self, other: Decisions) -> None:
        self.alerts.extend(other.alerts)
        self.commands.extend(other.commands)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.commands)
