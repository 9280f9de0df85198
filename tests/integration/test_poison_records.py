"""Records that used to stall a partition for good, on the real broker and worker.

* A 270 KB envelope published without a key: re-keyed under its use case it is re-encoded
  several times larger, over the producer's 1 MB limit, and every commit failed with
  ``MSG_SIZE_TOO_LARGE`` until the worker crashed (and again after each restart). Now it is
  re-published in parts that fit and every event counts.
* 20 events with 60 KB ``trace_id``s: the use case's state grew to 1.2 MB, over the limit, and
  every later commit touching it failed. Now an id over 256 characters is refused
  (``string_too_long``, one dead letter each), ids up to the limit are hashed in state, and the
  state stays small.
* A use case with thousands of traces open at once: its exact per-trace map grew with every
  trace. Now the pipeline trims its state under ``SPENDFUSE_STATE_MAX_BYTES`` (the oldest
  traces and outcome ids first), every state it commits is under the cap, and its spend still
  counts every event.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import orjson
import pytest

from spendfuse.schemas import topics
from spendfuse.streams.commit_producer import CommitProducer
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.outbox import Outbox
from spendfuse.streams.state_cache import CommitSequence
from tests.support.cluster import (
    UNIT_USD,
    ClusterWorker,
    Feed,
    Planned,
    good,
    latest_states,
    output_marks,
    read_json,
    read_topic,
    state_changelog,
    wait_caught_up,
    window_spend,
)
from tests.support.events import BASE_TIME, make_event, unique
from tests.support.rules import spend_limit_yaml, temp_rules_env
from tests.support.waiting import wait_for

ENV = {
    **temp_rules_env(spend_limit_yaml(6.0), default_pack=False),
    "SPENDFUSE_COMMIT_INTERVAL_S": "0.5",
    "SPENDFUSE_STATE_MAX_BYTES": "32768",
}
STATE_CAP = 32768
CROWD = 3_000  # events in one clock minute, each in a trace of its own


@pytest.mark.kafka
@pytest.mark.timeout(240)
def test_a_keyless_envelope_huge_ids_and_a_crowd_of_traces_do_not_stall_the_worker(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app_id = f"spendfuse-poison-{uuid.uuid4().hex[:6]}"
    keyless, traces = unique("keyless"), unique("traces")
    members = [
        make_event(keyless, cost=UNIT_USD, at=BASE_TIME, seconds=i * 0.04) for i in range(1200)
    ]
    envelope = orjson.dumps({"envelope_version": 1, "events": members})
    assert 250_000 < len(envelope) < 1_000_000
    long_ids = [
        good(
            make_event(
                traces, cost=UNIT_USD, at=BASE_TIME, seconds=i, trace_id=f"{i:02d}" + "t" * 254
            )
        )
        for i in range(20)
    ]
    too_long = [
        make_event(traces, cost=UNIT_USD, at=BASE_TIME, seconds=i, trace_id="t" * 60_000)
        for i in range(3)
    ]
    too_long_records = [Planned("too long", traces, None, orjson.dumps(e)) for e in too_long]
    after = good(make_event(traces, cost=UNIT_USD, at=BASE_TIME, seconds=30))
    crowd = unique("crowd")
    crowd_events = [
        make_event(
            crowd,
            cost=UNIT_USD,
            at=BASE_TIME,
            seconds=i * 0.015,
            trace_id=f"{crowd}-trace-{i:05d}",
            business_outcome_id=f"{crowd}-case-{i:05d}",
        )
        for i in range(CROWD)
    ]
    crowd_records = [
        Planned(
            "crowd",
            crowd,
            None,
            orjson.dumps({"envelope_version": 1, "events": crowd_events[i : i + 25]}),
        )
        for i in range(0, CROWD, 25)
    ]

    worker = ClusterWorker(kafka_bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **ENV).start()
    marks = output_marks(kafka_bootstrap)
    feed = Feed(kafka_bootstrap)
    try:
        feed.publish(
            [
                Planned("envelope", keyless, None, envelope),  # type: ignore[arg-type]
                *long_ids,
                *too_long_records,  # type: ignore[list-item]
                after,
                *crowd_records,  # type: ignore[list-item]
            ]
        )
        feed.flush()
        wait_caught_up(kafka_bootstrap, app_id, feed.ends(), "the input", 90, worker)

        def counted() -> bool:
            states = latest_states(kafka_bootstrap, app_id)
            return (
                window_spend(states, keyless) == 1200 * UNIT_USD
                and window_spend(states, traces) == 21 * UNIT_USD
                and window_spend(states, crowd) == CROWD * UNIT_USD
            )

        wait_for(counted, "every event of the three use cases counted once", 90)
        assert worker.alive, worker.log_tail()
        trimmed = worker.metric_total("spendfuse_state_trimmed_total")
        assert trimmed is not None and trimmed > CROWD // 2, trimmed
    finally:
        worker.stop()

    sizes = [
        len(r.value)
        for r in read_topic(kafka_bootstrap, state_changelog(app_id))
        if r.key is not None and traces in r.key.decode() and r.value is not None
    ]
    assert sizes and max(sizes) < 64_000, sizes  # 20 ids of 60 KB made it 1.2 MB
    crowd_sizes = [
        len(r.value)
        for r in read_topic(kafka_bootstrap, state_changelog(app_id))
        if r.key is not None and crowd in r.key.decode() and r.value is not None
    ]
    assert crowd_sizes and max(crowd_sizes) <= STATE_CAP, crowd_sizes
    crowd_state = latest_states(kafka_bootstrap, app_id)[crowd]["__aggregates__"]
    assert f"{crowd}-trace-{CROWD - 1:05d}" in crowd_state["tr"]  # the newest traces are kept
    assert f"{crowd}-trace-00000" not in crowd_state["tr"]  # the oldest were trimmed
    assert "bl" not in crowd_state  # the baseline cache is never persisted
    rekeyed = [
        r for r in read_topic(kafka_bootstrap, topics.COST_EVENTS) if r.key == keyless.encode()
    ]
    assert len(rekeyed) >= 2 and all(len(r.value) < 1_000_000 for r in rekeyed)
    letters = read_json(kafka_bootstrap, topics.COST_EVENTS_DLQ, marks[topics.COST_EVENTS_DLQ])
    assert [x for x in letters if x.get("reason") in ("unpublishable", "internal_error")] == []
    refused = [x for x in letters if x.get("reason") == "string_too_long"]
    assert len(refused) == len(too_long), refused
    assert {x["field"] for x in refused} == {"trace_id"}
    assert all(x["error"].startswith("trace_id: 60000 characters") for x in refused)
    fired = [
        a
        for a in read_json(kafka_bootstrap, topics.ALERTS, marks[topics.ALERTS])
        if a.get("use_case_id") in (keyless, traces, crowd)
        and a.get("status") == "firing"
        and a["evidence"].get("threshold") == 6.0  # this worker's rule (the shared one says $1)
    ]
    # $75 and $187.50 over the $6 limit; $1.31 not
    assert {a["use_case_id"] for a in fired} == {keyless, crowd}, [a["summary"] for a in fired]


@pytest.mark.kafka
def test_an_output_the_producer_refuses_is_dead_lettered_and_the_rest_still_go(
    kafka_bootstrap: str,
) -> None:
    marks = output_marks(kafka_bootstrap)
    key = unique("outbox").encode()
    sink, metrics = CommitProducer(kafka_bootstrap), SpendfuseMetrics()
    outbox = Outbox(sink, metrics=metrics)
    outbox.add(topics.ALERTS, key, b'{"n": 1}')
    outbox.add(topics.ALERTS, key, b'{"big": "' + b"x" * 1_200_000 + b'"}')  # over 1 MB
    outbox.add(topics.ALERTS, key, b'{"n": 3}')
    CommitSequence(outbox, [], sink, metrics).run()  # no exception
    sent = [
        orjson.loads(r.value)
        for r in read_topic(kafka_bootstrap, topics.ALERTS, marks[topics.ALERTS])
        if r.key == key
    ]
    assert sent == [{"n": 1}, {"n": 3}]
    letters = [
        r
        for r in read_topic(kafka_bootstrap, topics.COST_EVENTS_DLQ, marks[topics.COST_EVENTS_DLQ])
        if r.key == key
    ]
    assert len(letters) == 1
    letter = orjson.loads(letters[0].value)
    assert letter["reason"] == "unpublishable" and topics.ALERTS in letter["error"]
    assert metrics.events_dead_lettered.labels(reason="unpublishable")._value.get() == 1
