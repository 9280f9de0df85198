"""Every rejection reason reaches the dead-letter metric under its own label; late and early
events are counted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from spendfuse.dashboard_state import DashboardState
from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import REJECTION_REASONS, parse_cost_event_obj
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.observer import IngestObserver
from tests.metrics.test_metrics_unit import samples
from tests.support.events import BASE_TIME, make_event


def _event(**fields: object) -> bytes:
    return json.dumps({**make_event("bot"), **fields}, allow_nan=True).encode()


RECORDS = {
    "oversized": b'{"note": "' + b"x" * 100_000 + b'"}',
    "record_oversized": b'{"note": "' + b"x" * 2_000_000 + b'"}',
    "invalid_json": b"{not json",
    "too_deeply_nested": b"[" * 2000 + b"]" * 2000,
    "unknown_schema_version": _event(schema_version=7),
    "non_finite_number": _event(allocated_cost_usd=float("inf")),
    "negative_value": _event(input_tokens=-5),
    "number_out_of_range": _event(input_tokens=2**64 + 1),
    "event_time_out_of_range": _event(event_time="9999-12-31T23:59:59Z"),
    "string_too_long": _event(trace_id="t" * 300),
    "validation": _event(risk_tier="extreme"),
}


def test_each_rejection_reason_has_its_own_metric_label() -> None:
    assert set(RECORDS) == set(REJECTION_REASONS)
    metrics = SpendfuseMetrics()
    observer = IngestObserver(metrics, DashboardState())
    pipeline = Pipeline(Engine())
    for reason, raw in RECORDS.items():
        (dead,) = pipeline.decode_record(raw, BASE_TIME)
        assert isinstance(dead, DeadLetter) and dead.reason == reason, (reason, dead)
        observer.dead_lettered(dead.reason)
    got = samples(metrics)
    for reason in REJECTION_REASONS:
        assert got[("spendfuse_events_dead_lettered_total", (("reason", reason),))] == 1


def test_late_and_early_events_are_accepted_and_counted() -> None:
    now = BASE_TIME + timedelta(days=3)
    metrics = SpendfuseMetrics()
    observer = IngestObserver(metrics, DashboardState(), clock=lambda: now)
    pipeline, dedup, states = Pipeline(Engine()), MemoryDedupStore(), {}
    for at in (
        now - timedelta(days=2),
        now - timedelta(hours=23),
        now,
        now + timedelta(minutes=59),
        now + timedelta(hours=2),
    ):
        event = parse_cost_event_obj(make_event("bot", at=at.astimezone(UTC)))
        observer.handled(pipeline.handle(event, dedup, states))
    got = samples(metrics)
    assert got[("spendfuse_events_accepted_total", ())] == 5
    assert got[("spendfuse_events_late_total", ())] == 1
    assert got[("spendfuse_events_ahead_total", ())] == 1


def test_the_default_clock_is_the_wall_clock() -> None:
    observer = IngestObserver(SpendfuseMetrics(), DashboardState())
    assert abs(observer.clock() - datetime.now(UTC)) < timedelta(seconds=5)
