"""``spendfuse explain ALERT_ID``: the events, the baseline and the rule behind an alert.

The alert is read from ``spendfuse.alerts`` (or an ``alerts.jsonl`` from ``spendfuse replay``);
its evidence names the top traces and sample ``cost_event_id`` values; those events are read
from ``spendfuse.cost-events`` from a little before the alert's window (or from an events file
replayed), and the rule is printed as the rule files define it. Reading is bounded: the topics
are read up to their end at the start, the events topic from ``window_start`` (or ``fired_at``
less the window) minus a margin, and at most ``max_events`` records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.envelope import is_envelope
from spendfuse.schemas.errors import SpendfuseError
from spendfuse.schemas.topics import ALERTS, COST_EVENTS

__all__ = ["ALERTS", "COST_EVENTS", "Explanation", "find_alert", "matching_events"]

MARGIN = timedelta(minutes=10)


@dataclass(slots=True)
class Explanation:
    alert: Alert
    events: list[CostEvent] = field(default_factory=list)
    rule: dict[str, Any] | None = None


def find_alert(records: Iterable[bytes], alert_id: str) -> Alert | None:
    """The last record of ``alert_id`` (its resolution, if it resolved)."""
    found = None
    for raw in records:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(obj, dict) and obj.get("alert_id") == alert_id:
            found = Alert.model_validate(obj)
    return found


def matching_events(records: Iterable[bytes], alert: Alert, limit: int = 50) -> list[CostEvent]:
    """Events the evidence names (sample ids, top traces) from raw records or envelopes."""
    ids = set(alert.evidence.sample_event_ids)
    traces = {t.trace_id for t in alert.evidence.top_traces}
    out: list[CostEvent] = []
    for raw in records:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        for item in obj["events"] if is_envelope(obj) else [obj]:
            if not isinstance(item, dict):
                continue
            if item.get("cost_event_id") not in ids and item.get("trace_id") not in traces:
                continue
            try:
                out.append(parse_cost_event_obj(item))
            except (SpendfuseError, ValueError):
                continue
            if len(out) >= limit:
                return out
    return out


def file_records(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for line in fh:
            if line.strip():
                yield line


def topic_records(
    bootstrap: str, topic: str, since_ms: int | None = None, max_records: int = 2_000_000
) -> Iterator[bytes]:
    """Every record of ``topic`` up to its end now (from ``since_ms`` when given)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"explain-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
        }
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        start = [
            TopicPartition(topic, p, since_ms if since_ms is not None else OFFSET_BEGINNING)
            for p in parts
        ]
        if since_ms is not None:
            start = consumer.offsets_for_times(start, timeout=30)
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in parts
        }
        pending = {
            tp.partition
            for tp in start
            if 0 <= tp.offset < ends[tp.partition]
            or (tp.offset == OFFSET_BEGINNING and ends[tp.partition] > 0)
        }
        consumer.assign([tp for tp in start if tp.partition in pending])
        seen = 0
        while pending and seen < max_records:
            for msg in consumer.consume(500, 1.0):
                if msg.error() or msg.partition() not in pending:
                    continue
                seen += 1
                if msg.value() is not None:
                    yield msg.value()
                if msg.offset() >= ends[msg.partition()] - 1:
                    pending.discard(msg.partition())
    finally:
        consumer.close()


def events_since_ms(alert: Alert) -> int:
    ev = alert.evidence
    start = ev.window_start or alert.fired_at - timedelta(seconds=ev.window_s or 3600)
    return int((start - MARGIN).timestamp() * 1000)


def rule_spec(alert: Alert, rules_dir: Path | None, default_pack: bool) -> dict[str, Any] | None:
    from spendfuse.rules.loader import load_rules

    ruleset = load_rules(rules_dir, default_pack)
    spec = ruleset.rules.get(alert.rule)
    if spec is None:
        spec = ruleset.budgets.get(alert.labels.get("budget", "")) or ruleset.quotas.get(
            alert.labels.get("budget", "")
        )
    return spec.model_dump(mode="json", exclude_defaults=True, by_alias=True) if spec else None
