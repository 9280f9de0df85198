"""Size limits on the real broker: an envelope member over ``max_event_bytes`` is its own dead
letter while its siblings count, and a record over ``max_record_bytes`` is one dead letter whose
events never count (the worker here runs with 4096 and 262144 bytes)."""

from __future__ import annotations

import base64

import orjson

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.schemas.envelope import encode_envelope
from tests.support.events import make_event, unique
from tests.support.kafka import WorkerProcess, consume_until


def test_oversized_members_and_records_are_dead_lettered_and_never_counted(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("limits")
    key = uc.encode()
    # 80 valid members of 3.8 KB, $0.60 each: if this record were parsed, $48 would count
    too_big = encode_envelope(
        orjson.dumps(make_event(uc, cost=0.6, seconds=i, note="x" * 3_500)) for i in range(80)
    )
    assert 262_144 < len(too_big) < 1_000_000
    members = [
        make_event(uc, cost=0.6, seconds=100),
        make_event(uc, cost=0.6, seconds=101, note="x" * 5_000),  # over 4096 bytes alone
        make_event(uc, cost=0.6, seconds=102),
    ]
    publisher.publish_raw(too_big, key=key)
    publisher.publish_raw(encode_envelope(orjson.dumps(m) for m in members), key=key)
    assert publisher.flush() == 0

    dlq = consume_until(
        kafka_bootstrap,
        topics.COST_EVENTS_DLQ,
        lambda recs: len(recs) >= 2,
        match=lambda r: r.get("key_b64") == base64.b64encode(key).decode(),
    )
    by_reason = {r["reason"]: r for r in dlq}
    assert set(by_reason) == {"record_oversized", "oversized"}, dlq
    record = by_reason["record_oversized"]
    assert record["source"]["index"] is None and "SPENDFUSE_MAX_RECORD_BYTES" in record["error"]
    assert f"{len(too_big)} bytes" in record["error"]
    member = by_reason["oversized"]
    assert member["source"]["index"] == 1 and "max_event_bytes limit of 4096" in member["error"]
    assert orjson.loads(base64.b64decode(member["original_b64"])) == members[1]

    alerts = consume_until(
        kafka_bootstrap,
        topics.ALERTS,
        lambda recs: len(recs) >= 1,
        match=lambda r: r.get("use_case_id") == uc,
    )
    # only the two fitting members count: $1.20 at the second one's event time
    assert alerts[0]["evidence"]["value"] == 1.2
    assert alerts[0]["fired_at"] == "2026-11-23T09:01:42.000Z"


def test_an_over_long_field_is_one_dead_letter_and_its_envelope_siblings_count(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("strlimit")
    key = uc.encode()
    members = [
        make_event(uc, cost=0.6, seconds=200),
        make_event(uc, cost=0.6, seconds=201, trace_id="t" * 300),  # over 256 characters
        make_event(uc, cost=0.6, seconds=202),
    ]
    publisher.publish_raw(encode_envelope(orjson.dumps(m) for m in members), key=key)
    assert publisher.flush() == 0

    dlq = consume_until(
        kafka_bootstrap,
        topics.COST_EVENTS_DLQ,
        lambda recs: len(recs) >= 1,
        match=lambda r: r.get("key_b64") == base64.b64encode(key).decode(),
    )
    (letter,) = dlq
    assert (letter["reason"], letter["field"], letter["source"]["index"]) == (
        "string_too_long",
        "trace_id",
        1,
    )
    assert letter["error"] == (
        "trace_id: 300 characters, over the limit of 256 for an id; send at most 256 "
        "characters (a hash of a longer id fits)"
    )
    assert orjson.loads(base64.b64decode(letter["original_b64"])) == members[1]

    alerts = consume_until(
        kafka_bootstrap,
        topics.ALERTS,
        lambda recs: len(recs) >= 1,
        match=lambda r: r.get("use_case_id") == uc,
    )
    # the two siblings count: $1.20 at the third member's event time
    assert alerts[0]["evidence"]["value"] == 1.2
    assert alerts[0]["fired_at"] == "2026-11-23T09:03:22.000Z"
