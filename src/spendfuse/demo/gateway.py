"""A stand-in AI gateway for the demo: it follows the control topic's commands.

Real gateways embed :mod:`spendfuse.gateway`; the demo needs only the effect on traffic, so this
is a pure filter over the simulated events:

- a ``kill_switch`` in force on a use case refuses its calls (no spend);
- a ``degrade`` in force routes its model calls to the small model with shorter outputs;
- either one aborts the agent tasks that were looping (their trace gets an error and stops),
  which is what ends a runaway loop;
- a ``restore`` lifts the command; an aborted trace stays aborted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spendfuse.schemas.command import CommandKind, ControlCommand, TargetType

SMALL_MODEL = "gpt-4o-mini"
DEGRADED_MAX_OUTPUT_TOKENS = 512


class DemoGateway:
    def __init__(self) -> None:
        self.in_force: dict[str, ControlCommand] = {}
        self.aborted_traces: set[str] = set()
        self.refused = 0
        self.degraded = 0

    def apply(self, command: ControlCommand) -> None:
        if command.target.type is not TargetType.USE_CASE or command.mode != "enforce":
            return
        if command.kind is CommandKind.RESTORE:
            self.in_force.pop(command.target.id, None)
        else:
            self.in_force[command.target.id] = command

    def admit(self, event: dict[str, Any], now: datetime) -> dict[str, Any] | None:
        """The event as the gateway lets it happen, or None if the call was refused."""
        command = self.in_force.get(event["use_case_id"])
        if command is not None and command.expires_at is not None and command.expires_at <= now:
            command = None
        trace = event.get("trace_id")
        if command is not None and event.get("is_retry") and trace:
            self.aborted_traces.add(trace)
        if trace in self.aborted_traces:
            self.refused += 1
            return None
        if command is None:
            return event
        if command.kind is CommandKind.KILL_SWITCH:
            self.refused += 1
            return None
        if event.get("component") == "model_call":
            self.degraded += 1
            return {
                **event,
                "model_or_service": SMALL_MODEL,
                "output_tokens": min(event.get("output_tokens", 0), DEGRADED_MAX_OUTPUT_TOKENS),
            }
        return event
