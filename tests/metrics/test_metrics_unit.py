"""The worker's metrics and the observer that feeds them, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from spendfuse.dashboard_state import DashboardState
from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from spendfuse.streams.metrics import SpendfuseMetrics, rule_of
from spendfuse.streams.observer import IngestObserver
from tests.support.events import make_event
from tests.support.rules import spend_limit_rules


def samples(metrics: SpendfuseMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counters_by_outcome_reason_rule_and_kind() -> None:
    metrics = SpendfuseMetrics()
    pipeline = Pipeline(Engine(spend_limit_rules(1.0)))
    observer = IngestObserver(metrics, DashboardState())
    dedup, states = MemoryDedupStore(), {}
    first = make_event("bot", cost=0.6)
    for raw in (first, first, make_event("bot", cost=0.6, seconds=1)):
        observer.record_in()
        with observer.deciding():
            observer.handled(pipeline.handle(parse_cost_event_obj(raw), dedup, states))
    observer.record_in()
    observer.dead_lettered("invalid_json")
    observer.record_in()
    observer.rekeyed()

    got = samples(metrics)
    assert got[("spendfuse_events_in_total", ())] == 5
    assert got[("spendfuse_events_accepted_total", ())] == 2
    assert got[("spendfuse_events_duplicate_total", ())] == 1
    assert got[("spendfuse_events_rekeyed_total", ())] == 1
    assert got[("spendfuse_events_dead_lettered_total", (("reason", "invalid_json"),))] == 1
    assert got[("spendfuse_spend_usd_total", ())] == 1.2
    assert (
        got[("spendfuse_alerts_total", (("rule", "spend_rate_limit"), ("status", "firing")))] == 1
    )
    assert (
        got[("spendfuse_commands_total", (("kind", "degrade"), ("rule", "spend_rate_limit")))] == 1
    )
    assert got[("spendfuse_detector_seconds_count", ())] == 3
    assert observer.dashboard.events_seen == 2


def test_processing_histogram_and_lag_gauges() -> None:
    metrics = SpendfuseMetrics()
    with metrics.time_processing():
        pass
    metrics.set_lag([("spendfuse.cost-events", 0, 7), ("spendfuse.cost-events", 1, -3)])
    got = samples(metrics)
    assert got[("spendfuse_processing_seconds_count", ())] == 1
    lag = {k[1]: v for k, v in got.items() if k[0] == "spendfuse_consumer_lag"}
    assert lag == {
        (("partition", "0"), ("topic", "spendfuse.cost-events")): 7,
        (("partition", "1"), ("topic", "spendfuse.cost-events")): 0,
    }
    assert got[("spendfuse_assigned_partitions", ())] == 2
    metrics.set_lag([("spendfuse.cost-events", 1, 2)])  # partition 0 revoked: its gauge goes
    assert (
        "spendfuse_consumer_lag",
        (("partition", "0"), ("topic", "spendfuse.cost-events")),
    ) not in samples(metrics)


def test_two_instances_do_not_share_a_registry() -> None:
    a, b = SpendfuseMetrics(), SpendfuseMetrics()
    a.record_dead_letter("invalid_json")
    assert samples(a)[("spendfuse_events_dead_lettered_total", (("reason", "invalid_json"),))] == 1
    assert ("spendfuse_events_dead_lettered_total", (("reason", "invalid_json"),)) not in samples(b)


def test_rule_of_names_the_rule_or_the_operator() -> None:
    def cmd(issued_by: str) -> ControlCommand:
        return ControlCommand(
            command_id="c",
            kind=CommandKind.RESTORE,
            issued_by=issued_by,
            target=Target(type=TargetType.USE_CASE, id="bot"),
            reason="r",
            issued_at=datetime(2026, 11, 23, tzinfo=UTC),
        )

    assert rule_of(cmd("rule:spend_rate_limit")) == "spend_rate_limit"
    assert rule_of(cmd("operator:ana")) == "operator"
