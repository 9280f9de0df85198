"""A stand-in AI gateway for the demo: it follows the control topic's commands.

Real gateways embed :mod:`spendfuse.gateway`; the demo needs only the effect on traffic, so this
is a pure filter over the simulated events:

- a ``kill_switch`` in force on a use case refuses its calls (no spend);
- a ``degrade`` in force applies its level, as :mod:`spendfuse.gateway` decides it: L1 routes
  model calls to the small model with shorter outputs; L2 sends them to on-demand capacity
  (``capacity: on_demand``); L3 to the approved fallback model; L2 and L3 refuse (pause) batch
  and sandbox calls; L4 refuses every call, handing the work to the manual workflow;
- either one aborts the agent tasks that were looping (their trace gets an error and stops),
  which is what ends a runaway loop;
- a ``restore`` lifts the command; an aborted trace stays aborted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spendfuse.gateway.decision import Decision
from spendfuse.gateway.state import build_decision, paused_decisions, workloads_of
from spendfuse.schemas.command import CommandKind, ControlCommand, TargetType

SMALL_MODEL = "gpt-4o-mini"
FALLBACK_MODEL = "claude-3-5-haiku"  # the demo's approved fallback
DEGRADED_MAX_OUTPUT_TOKENS = 512


class DemoGateway:
    def __init__(self) -> None:
        self.in_force: dict[str, ControlCommand] = {}
        self.aborted_traces: set[str] = set()
        self._decisions: dict[str, tuple[Decision, dict[str, Decision]]] = {}
        self.refused = 0
        self.degraded = 0
        self.paused = 0
        self.manual_workflow = 0

    def apply(self, command: ControlCommand) -> None:
        if command.target.type is not TargetType.USE_CASE or command.mode != "enforce":
            return
        if command.kind is CommandKind.RESTORE:
            self.in_force.pop(command.target.id, None)
            self._decisions.pop(command.target.id, None)
        else:
            self.in_force[command.target.id] = command
            decision = build_decision(command)
            self._decisions[command.target.id] = (decision, paused_decisions(decision))

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
        decision, paused = self._decisions[event["use_case_id"]]
        if any(w in paused for w in workloads_of(event.get)):
            self.paused += 1
            self.refused += 1
            return None
        if decision.action == "deny":  # a kill switch, or L4's manual workflow
            self.manual_workflow += decision.manual_workflow
            self.refused += 1
            return None
        if event.get("component") != "model_call":
            return event
        self.degraded += 1
        out = dict(event)
        if decision.model_tier == "small":
            out["model_or_service"] = SMALL_MODEL
        elif decision.model_tier == "approved_fallback":
            out["model_or_service"] = FALLBACK_MODEL
        if decision.spillover:
            out["capacity"] = "on_demand"
        if decision.max_output_tokens is not None:
            out["output_tokens"] = min(event.get("output_tokens", 0), decision.max_output_tokens)
        return out
