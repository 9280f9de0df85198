"""Decisions: rules over cost events and their aggregates, the guardrail, alert lifecycle.

Pure: no Kafka, no Faust, no wall clock. Time is the event time of the events processed.
"""

from spendfuse.rules.decisions import Decisions
from spendfuse.rules.engine import Engine, Rule, TenantEngine
from spendfuse.rules.spend_limit import SpendLimitConfig, SpendLimitRule

__all__ = ["Decisions", "Engine", "Rule", "SpendLimitConfig", "SpendLimitRule", "TenantEngine"]
