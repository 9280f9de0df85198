"""``spendfuse report --from-kafka`` on the real broker: rollups published to a topic come back
as the same chargeback; the rollups topic is created time-retained and compacted by rollup
key, and the report counts the latest record of each key."""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from spendfuse.cli import main
from spendfuse.finops.rollups import RollupAccumulator
from spendfuse.schemas import topics
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.rollup import rollup_key
from spendfuse.settings import Settings
from spendfuse.streams.topics import ensure_topics
from tests.finops.worked import TOTAL, month_events

pytestmark = pytest.mark.kafka


def test_rollups_topic_is_retained_and_compacted(kafka_bootstrap: str) -> None:
    ensure_topics(Settings(bootstrap_servers=kafka_bootstrap))
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    resource = ConfigResource(ResourceType.TOPIC, topics.COST_ROLLUPS)
    config = admin.describe_configs([resource])[resource].result(30)
    assert config["cleanup.policy"].value == "compact,delete"
    assert int(config["retention.ms"].value) == topics.ROLLUP_RETENTION_MS


def test_report_from_the_rollups_topic(kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = f"spendfuse.cost-rollups.test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    acc = RollupAccumulator()
    for raw in month_events():
        acc.add(parse_cost_event_obj(raw))
    records = acc.drain()
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for record in records:  # each published twice: first with half its cost, then in full
        half = record.model_copy(update={"cost_usd": record.cost_usd / 2})
        producer.produce(topic, key=rollup_key(record), value=half.model_dump_json().encode())
        producer.produce(topic, key=rollup_key(record), value=record.model_dump_json().encode())
    assert producer.flush(30) == 0
    out = tmp_path / "out"
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--from-kafka",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--kind",
            "chargeback",
            "--format",
            "parquet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(out / "chargeback_month.parquet").to_pylist()
    assert sum(r["BilledCost"] for r in rows) == pytest.approx(TOTAL)
    by_cc: dict[str, float] = {}
    for r in rows:
        by_cc[r["x_CostCenter"]] = by_cc.get(r["x_CostCenter"], 0.0) + r["BilledCost"]
    assert by_cc["cc_4102"] == pytest.approx(79_000.0)
    assert orjson.loads(rows[0]["Tags"])  # attribution travels with each line


def test_report_from_the_topic_with_a_start(kafka_bootstrap: str, tmp_path: Path) -> None:
    """--start seeks the topic by record time (less to read) and keeps every hour from it."""
    from datetime import UTC, datetime

    from spendfuse.finops.report import report_rows
    from spendfuse.finops.sources import rollups_from_records

    topic = f"spendfuse.cost-rollups.test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    acc = RollupAccumulator()
    for raw in month_events():
        acc.add(parse_cost_event_obj(raw))
    records = acc.drain()
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for record in records:
        producer.produce(topic, key=rollup_key(record), value=record.model_dump_json().encode())
    assert producer.flush(30) == 0
    start = datetime(2026, 6, 16, tzinfo=UTC)
    expected = report_rows(rollups_from_records(records), "day", "chargeback", start=start)
    result = CliRunner().invoke(
        main,
        [
            "report",
            "--from-kafka",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--start",
            "2026-06-16",
            "--period",
            "day",
            "--kind",
            "chargeback",
            "--format",
            "parquet",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = pq.read_table(tmp_path / "chargeback_day.parquet").to_pylist()
    assert 0 < sum(r["BilledCost"] for r in rows) < TOTAL
    assert sum(r["BilledCost"] for r in rows) == pytest.approx(sum(r["cost_usd"] for r in expected))
    assert min(r["ChargePeriodStart"] for r in rows) >= start
