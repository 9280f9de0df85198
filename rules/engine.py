"""The decision engine: every rule over one event, with per-use-case state as plain data.

``engine.process(event, state)`` is the single entry point both ``spendfuse replay`` and the Faust
worker call. ``state`` is the use case's JSON-able dict (a Faust table value in the worker, a dict
entry in replay); the engine mutates it in place, so both paths reach the same decisions.
"""

from __future__ import annotations

from typing import Any, Protocol

from spendfuse.rules.decisions import Decisions
from spendfuse.rules.spend_limit import SpendLimitConfig, SpendLimitRule
from spendfuse.schemas.cost_event import CostEvent


class Rule(Protocol):
    name: str

    def evaluate_one(self, event: CostEvent, state: dict[str, Any]) -> Decisions: ...


class Engine:
    """Runs each rule against its own slice of the use case's state."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules

    @classmethod
    def default(cls, spend_limit: SpendLimitConfig | None = None) -> Engine:
        return cls([SpendLimitRule(spend_limit)])

    def process(self, event: CostEvent, state: dict[str, Any]) -> Decisions:
        out = Decisions()
        for rule in self.rules:
            out.extend(rule.evaluate_one(event, state.setdefault(rule.name, {})))
        return out
