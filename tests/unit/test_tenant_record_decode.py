"""The tenant stage reads back what the ingest wrote: the same priced events, member by member."""

from __future__ import annotations

import orjson

from spendfuse.schemas.codec import encode_cost_events, parse_cost_event_obj
from spendfuse.schemas.envelope import encode_envelope
from spendfuse.schemas.pricing import price_event
from spendfuse.streams.tenant import decode_tenant_record
from tests.support.events import make_event


def _priced(n: int) -> list:
    events = []
    for i in range(n):
        extra = {"trace_id": f"t{i % 3}", "step_number": i} if i % 2 else {}
        event = parse_cost_event_obj(make_event(f"u{i % 4}", cost=None, seconds=i, **extra))
        price_event(event)
        events.append(event)
    return events


def test_an_envelope_decodes_to_the_events_the_ingest_encoded() -> None:
    events = _priced(30)  # enough rows of one shape for the column path
    got = decode_tenant_record(encode_cost_events(events))
    assert [e.model_dump() for e in got] == [e.model_dump() for e in events]
    want = [parse_cost_event_obj(m) for m in orjson.loads(encode_cost_events(events))["events"]]
    assert [e.model_dump() for e in got] == [e.model_dump() for e in want]


def test_a_lone_event_decodes_as_itself() -> None:
    (event,) = _priced(1)
    got = decode_tenant_record(encode_cost_events([event]))
    assert [e.model_dump() for e in got] == [event.model_dump()]
    single = decode_tenant_record(orjson.dumps(event.model_dump(mode="json")))
    assert [e.model_dump() for e in single] == [event.model_dump()]


def test_a_record_with_a_refused_member_is_skipped_whole() -> None:
    members = [make_event("u", seconds=i) for i in range(20)]
    members[7]["input_tokens"] = -5
    assert decode_tenant_record(encode_envelope(orjson.dumps(m) for m in members)) == []
    assert decode_tenant_record(b"not json") == []
