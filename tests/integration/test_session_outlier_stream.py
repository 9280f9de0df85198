"""The default pack's session outlier rule in a live worker: a use case learns its sessions'
P99.9 from the stream, and the session that passes it is stopped by a trace kill on the
control topic -- that trace only, never the use case."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from tests.support.events import BASE_TIME, make_event, unique
from tests.support.kafka import WorkerProcess, consume_until

SESSIONS = 700  # over the rule's min_sessions (500) once those older than 15 minutes finish


def test_a_runaway_session_is_stopped_by_a_trace_kill(
    worker: WorkerProcess, publisher: CostEventPublisher, kafka_bootstrap: str
) -> None:
    uc = unique("agent")
    rng = random.Random(5)
    for i in range(SESSIONS):  # three events a session, $0.03-0.05 a session, one every 20 s
        total = rng.uniform(0.03, 0.05)
        for k in range(3):
            at = BASE_TIME + timedelta(seconds=20 * i + 2 * k)
            publisher.publish(make_event(uc, cost=total / 3, trace_id=f"{uc}-s{i}", at=at))
    start = BASE_TIME + timedelta(seconds=20 * SESSIONS + 60)
    runaway = [
        make_event(uc, cost=0.02, trace_id=f"{uc}-loop", at=start + timedelta(seconds=3 * k))
        for k in range(10)
    ]
    for event in runaway:
        publisher.publish(event)
    assert publisher.flush() == 0

    def mine(rec: dict) -> bool:
        return rec.get("use_case_id") == uc

    alerts = consume_until(
        kafka_bootstrap,
        topics.ALERTS,
        lambda r: any(a["rule"] == "session_cost_outlier" for a in r),
        match=mine,
        timeout_s=120,
    )
    commands = consume_until(kafka_bootstrap, topics.CONTROL, lambda r: len(r) >= 1, match=mine)

    [alert] = [a for a in alerts if a["rule"] == "session_cost_outlier"]
    threshold = alert["evidence"]["threshold"]
    crossed = next(k for k in range(1, 11) if 0.02 * k > threshold)
    fired_at = datetime.fromisoformat(alert["fired_at"].replace("Z", "+00:00"))
    assert fired_at == start + timedelta(seconds=3 * (crossed - 1))  # the crossing event
    assert alert["evidence"]["top_traces"] == [
        {"trace_id": f"{uc}-loop", "cost_usd": round(0.02 * crossed, 8), "steps": crossed}
    ]
    # only that trace is stopped: one kill on the control topic, scoped to the trace
    assert [(c["kind"], c["target"]) for c in commands] == [
        ("kill_switch", {"type": "trace", "id": f"{uc}-loop"})
    ]
    assert commands[0]["command_id"] in alert["actions_taken"]
    assert commands[0]["within"]["use_case_id"] == uc
    assert commands[0]["risk_protection"] is True
