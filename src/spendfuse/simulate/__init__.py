"""``spendfuse simulate``: realistic labelled cost-event streams with injected incidents."""

from spendfuse.simulate.fleet import Fleet, UseCaseProfile, default_fleet
from spendfuse.simulate.generator import (
    expected_events_per_minute,
    simulate_fleet,
    traffic_shape,
)
from spendfuse.simulate.incidents import NOT_INCIDENTS, Incident, default_incidents
from spendfuse.simulate.scenarios import SCENARIO_KINDS, Scenario, random_scenario

__all__ = [
    "NOT_INCIDENTS",
    "SCENARIO_KINDS",
    "Fleet",
    "Incident",
    "Scenario",
    "UseCaseProfile",
    "default_fleet",
    "default_incidents",
    "expected_events_per_minute",
    "random_scenario",
    "simulate_fleet",
    "traffic_shape",
]
