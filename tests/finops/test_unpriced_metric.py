"""Unpriced spend is counted where on-call looks: spendfuse_events_unpriced, by component."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from spendfuse.dashboard_state import DashboardState
from spendfuse.pipeline import Handled, Outcome
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.pricing import price_event
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.observer import IngestObserver
from tests.support.events import make_event


def test_unpriced_events_are_counted_by_component() -> None:
    metrics = SpendfuseMetrics()
    observer = IngestObserver(metrics, DashboardState())
    raws = [
        make_event("u", cost=None, model_or_service="in-house-llm-7"),
        make_event(
            "u",
            cost=None,
            component="gpu",
            model_or_service="a100",
            input_tokens=0,
            output_tokens=0,
            gpu_seconds=3.0,
        ),
        make_event("u", cost=0.2),
    ]
    for raw in raws:
        event = price_event(parse_cost_event_obj(raw))
        observer.handled(Handled(Outcome.ACCEPTED, event))
    body, _ = metrics.exposition()
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert got[("spendfuse_events_unpriced_total", (("component", "model_call"),))] == 1
    assert got[("spendfuse_events_unpriced_total", (("component", "gpu"),))] == 1
    assert got[("spendfuse_events_accepted_total", ())] == 3
