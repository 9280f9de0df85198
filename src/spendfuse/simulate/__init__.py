"""``spendfuse simulate``: realistic labelled cost-event streams with injected incidents."""

from spendfuse.simulate.fleet import Fleet, UseCaseProfile, default_fleet
from spendfuse.simulate.generator import simulate_fleet, traffic_shape
from spendfuse.simulate.incidents import NOT_INCIDENTS, Incident, default_incidents

__all__ = [
    "NOT_INCIDENTS",
    "Fleet",
    "Incident",
    "UseCaseProfile",
    "default_fleet",
    "default_incidents",
    "simulate_fleet",
    "traffic_shape",
]
