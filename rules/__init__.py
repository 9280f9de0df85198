"""Decisions: rules over cost events and their aggregates, the guardrail, alert lifecycle.

Pure: no Kafka, no Faust, no wall clock. Time is the event time of the events processed.

Where things are: ``model.py`` (the rule-file format) and ``loader.py`` (its errors);
``conditions.py``, ``signals.py`` (anomaly watches on registry detectors) and ``budgets.py``
are the rule kinds, which only return verdicts; ``lifecycle.py`` owns pending / firing /
resolved; ``actions.py`` builds every alert and command, through ``guardrail.py``;
``engine.py`` runs them over one key's events.
"""

from spendfuse.rules.decisions import Decisions
from spendfuse.rules.engine import Engine, TenantEngine

__all__ = ["Decisions", "Engine", "TenantEngine"]
