"""The default pack's ``unpriced_spend`` rule: an alert (never an action) when a use case's
events arrive with no cost that nothing can price; quiet while every event is priced."""

from __future__ import annotations

from datetime import timedelta

import orjson

from spendfuse.pipeline import Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.loader import load_default_pack
from spendfuse.rules.metrics.catalog import METRICS, event_sums, parse_extensions
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.pricing import price_event
from tests.support.events import BASE_TIME, make_event

UNKNOWN = {"model_or_service": "in-house-llm-7", "provider": "internal"}


def _pipeline() -> Pipeline:
    rules = load_default_pack()
    return Pipeline(Engine(rules), tenant_engine=TenantEngine(rules))


def _records(events: list[dict]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


def test_unpriced_events_are_a_metric_rules_read() -> None:
    event = price_event(parse_cost_event_obj(make_event("u", cost=None, **UNKNOWN)))
    sums = event_sums(event, parse_extensions(event), False, False)
    assert sums["unpriced_events"] == 1
    assert METRICS["unpriced_share"].value({"unpriced_events": 1, "calls": 4}) == 0.25
    priced = price_event(parse_cost_event_obj(make_event("u", cost=0.2)))
    assert "unpriced_events" not in event_sums(priced, parse_extensions(priced), False, False)


def test_an_unpriced_event_alerts_and_never_acts() -> None:
    events = [make_event("bot", cost=0.01, seconds=i) for i in range(5)]
    events.append(make_event("bot", cost=None, seconds=10, **UNKNOWN))
    events += [
        make_event("bot", cost=0.01, at=BASE_TIME + timedelta(hours=2), seconds=i) for i in range(3)
    ]
    result = replay_records(_records(events), _pipeline())
    alerts = [orjson.loads(a) for a in result.alerts]
    mine = [a for a in alerts if a["rule"] == "unpriced_spend"]
    assert [a["status"] for a in mine] == ["firing", "resolved"]
    assert mine[0]["use_case_id"] == "bot" and mine[0]["evidence"]["value"] == 1
    assert "could not be priced" in mine[0]["summary"]
    assert not [c for c in map(orjson.loads, result.commands) if "unpriced" in c["rule"]]


def test_priced_events_keep_it_quiet() -> None:
    events = [make_event("bot", cost=0.01, seconds=i) for i in range(20)]
    events.append(make_event("bot", cost=None, seconds=30))  # gpt-4o-mini: the catalog prices it
    result = replay_records(_records(events), _pipeline())
    assert not [a for a in map(orjson.loads, result.alerts) if a["rule"] == "unpriced_spend"]
