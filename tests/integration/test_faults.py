"""Faults on the real broker: every input record accounted for, no command issued twice.

The judge is what is durable on the broker once the worker's group has committed all input:

* each good event counted once: a use case's spend in the spend-rate rule's window (its state
  table's changelog) must equal the exact sum of its distinct events' costs (multiples of 1/16,
  so sums are exact, and one missing or repeated event is off by a whole event's cost);
* every bad record's source offset is in the dead-letter topic. A bad record handled again
  after a crash may be dead-lettered again: at-least-once, the source offset is its identity;
* each use case's hourly rollups (the latest record of each key on the compacted rollups topic)
  add up to that same exact sum after a kill -9: a state is never written before the rollup
  rows it holds are acknowledged;
* no command id twice on the control topic, one firing alert per use case; after kills
  mid-flush, every expected alert and command id is there (a copy may repeat: outputs are
  acknowledged before the ids and state that cover them, so a kill between the two re-issues
  them, and consumers know them by id).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from spendfuse.localkafka import LocalKafka
from spendfuse.schemas import topics
from tests.support.cluster import (
    Audit,
    ClusterWorker,
    Feed,
    Planned,
    audit,
    committed,
    end_offsets,
    expected_spend,
    good,
    interleave,
    kill_mid_flush,
    latest_states,
    output_marks,
    plan_stream,
    read_json,
    read_topic,
    wait_caught_up,
    window_spend,
)
from tests.support.events import BASE_TIME, make_event, unique
from tests.support.rules import (
    fast_watches_yaml,
    rules_env,
    spend_limit_yaml,
    temp_rules_env,
)
from tests.support.waiting import wait_for

LEAN = temp_rules_env(spend_limit_yaml(6.0), default_pack=False)
# one-minute buckets and a short warm-up, as in test_state_recovery
LEAN_WITH_BASELINES = temp_rules_env(spend_limit_yaml(6.0), fast_watches_yaml(), default_pack=False)
FAST_COMMITS = {"SPENDFUSE_COMMIT_INTERVAL_S": "0.5"}


def _assert_accounted(result: Audit, use_cases: list[str], *, copies_ok: bool = False) -> None:
    assert result.lost == {}, f"good events missing from state: {result.lost} {result.history}"
    assert result.double_counted == {}, (
        f"events counted twice: {result.double_counted} {result.history}"
    )
    assert result.missing_dead_letters == [], result.missing_dead_letters
    assert result.dead_lettered == result.bad > 0
    if not copies_ok:
        assert result.duplicated_commands == {}, result.duplicated_commands
    assert result.firing_by_use_case == dict.fromkeys(use_cases, 1), result.firing_by_use_case
    assert len(result.commands) == len(use_cases)  # one degrade each: every use case crosses


def _minutes_of_spend(use_case: str, minutes: range, per_event: float) -> list[Planned]:
    """Five events a minute of about ``per_event`` each (as in test_state_recovery)."""
    return [
        good(
            make_event(
                use_case,
                cost=per_event * (0.9 + 0.05 * k),
                at=BASE_TIME + timedelta(minutes=m, seconds=10 * k),
            )
        )
        for m in minutes
        for k in range(5)
    ]


def _within(timeout_s: float, probe: Callable[[], object]) -> bool:
    """Whether ``probe()`` turns truthy within ``timeout_s`` (no failure if it does not)."""
    try:
        wait_for(probe, "", timeout_s)
    except AssertionError:
        return False
    return True


def _processed_and_committed(
    worker: ClusterWorker, bootstrap: str, app_id: str, start: dict[int, int]
) -> tuple[float, int]:
    seen = worker.events_in() or 0.0
    done = committed(bootstrap, app_id)
    return seen, sum(max(done.get(p, -1), s) - s for p, s in start.items())


def _rollup_spend(bootstrap: str, use_cases: set[str]) -> dict[str, float]:
    """Each use case's spend from the rollups topic, the latest record of each key counting
    (as a compacted topic and ``spendfuse report`` keep it)."""
    latest: dict[bytes, dict] = {}
    for rec in read_topic(bootstrap, topics.COST_ROLLUPS):
        if rec.value is None or rec.key is None:
            continue
        row = orjson.loads(rec.value)
        if row.get("use_case_id") in use_cases:
            latest[rec.key] = row
    sums: dict[str, float] = defaultdict(float)
    for row in latest.values():
        sums[row["use_case_id"]] += row["cost_usd"]
    return dict(sums)


def _kill_with_uncommitted_work(
    worker: ClusterWorker, bootstrap: str, app_id: str, start: dict[int, int], after: int
) -> tuple[float, int]:
    """SIGKILL the worker once it has handled records whose offsets are not committed yet.

    It is frozen (SIGSTOP) first, so that no commit can land between the check and the kill;
    if the check fails (a commit had just covered everything), it is thawed and tried again.
    """
    wait_for(lambda: (worker.events_in() or 0) >= after, f"{after} records handled", 60)
    for _ in range(50):
        seen = worker.events_in() or 0.0
        worker.pause()
        _, done = _processed_and_committed(worker, bootstrap, app_id, start)
        if seen > done:
            worker.kill()
            return seen, done
        worker.resume()
        wait_for(lambda s=seen: (worker.events_in() or 0) > s, "more records handled", 30)
    raise AssertionError("never caught the worker with uncommitted work")


@pytest.mark.timeout(240)
def test_kill_9_under_load_then_restart_accounts_for_every_record(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    app_id = f"spendfuse-kill9-{uuid.uuid4().hex[:6]}"
    use_cases = [unique("kill9") for _ in range(8)]
    steady, fresh = unique("kill9-steady"), unique("kill9-fresh")
    # 100 good events per use case (each crosses the $6 limit once, some early, some late),
    # a repeat of every 10th good event, a bad record every 50 records, and 30 minutes of a
    # steady use case's history for its baseline.
    plan = plan_stream(use_cases, 100)
    history = _minutes_of_spend(steady, range(30), 0.02)  # ~$0.10 a minute
    mixed = interleave(plan, history)

    first = ClusterWorker(
        kafka_bootstrap,
        tmp_path / "first",
        SPENDFUSE_APP_ID=app_id,
        SPENDFUSE_DATA_DIR=str(tmp_path / "data"),
        SPENDFUSE_COMMIT_EVERY="200",
        SPENDFUSE_COMMIT_INTERVAL_S="600",
        **LEAN_WITH_BASELINES,
    )
    (tmp_path / "first").mkdir()
    first.start()
    start = end_offsets(kafka_bootstrap, topics.COST_EVENTS)
    marks = output_marks(kafka_bootstrap)
    feed = Feed(kafka_bootstrap)
    feed.publish_in_background(mixed, rate_per_s=500)
    try:
        seen, done = _kill_with_uncommitted_work(
            first, kafka_bootstrap, app_id, start, after=len(mixed) * 2 // 5
        )
    finally:
        first.stop()
    # what the offsets say after the kill: the handled records beyond them will be handled again
    _, done = _processed_and_committed(first, kafka_bootstrap, app_id, start)
    assert seen > done, (seen, done)

    (tmp_path / "second").mkdir()
    second = ClusterWorker(
        kafka_bootstrap,
        tmp_path / "second",
        SPENDFUSE_APP_ID=app_id,
        SPENDFUSE_DATA_DIR=str(tmp_path / "data"),
        **FAST_COMMITS,
        **LEAN_WITH_BASELINES,
    )
    second.start()
    try:
        feed.join()
        feed.flush()
        assert feed.produced == len(mixed)
        wait_caught_up(kafka_bootstrap, app_id, feed.ends(), "catch-up", 120, second)
        result = audit(kafka_bootstrap, app_id, feed, outputs_since=marks, summed=use_cases)
        rolled = _rollup_spend(kafka_bootstrap, {*use_cases, steady})

        spike = Feed(kafka_bootstrap)  # 6x the learned spend: only a restored baseline sees it
        spike.publish(
            interleave(
                _minutes_of_spend(steady, range(30, 36), 0.12),
                _minutes_of_spend(fresh, range(30, 36), 0.12),
            )
        )
        spike.flush()
        wait_caught_up(kafka_bootstrap, app_id, spike.ends(), "the spike", 60, second)
    finally:
        second.stop()

    _assert_accounted(result, use_cases, copies_ok=True)
    assert result.good == 800 + len(history) and result.duplicates == 80
    spent = {uc: total for uc, (total, _unit) in expected_spend(feed.sent).items()}
    assert rolled == pytest.approx(spent, abs=1e-9)
    anomalies = [
        a
        for a in read_json(kafka_bootstrap, topics.ALERTS, marks[topics.ALERTS])
        if a.get("rule") == "spend_spike_anomaly" and a.get("use_case_id") in (steady, fresh)
    ]
    assert [a["use_case_id"] for a in anomalies if a["status"] == "firing"] == [steady]
    assert anomalies[0]["evidence"]["baseline"] < 0.2  # learned before the kill
    assert anomalies[0]["evidence"]["value"] > 0.5


@pytest.mark.timeout(180)
def test_command_decided_just_before_a_kill_is_sent_once(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The worker decides (and may already publish) a command, then dies before committing the
    offsets of the events behind it: after the restart the command exists exactly once, and the
    state counts both events once."""
    app_id = f"spendfuse-once-{uuid.uuid4().hex[:6]}"
    uc = unique("once")
    env = {
        "SPENDFUSE_APP_ID": app_id,
        "SPENDFUSE_DATA_DIR": str(tmp_path / "data"),
        **rules_env(tmp_path / "rules", spend_limit_yaml(1.0), default_pack=False),
    }
    (tmp_path / "first").mkdir()
    first = ClusterWorker(
        kafka_bootstrap,
        tmp_path / "first",
        SPENDFUSE_COMMIT_INTERVAL_S="600",
        SPENDFUSE_COMMIT_EVERY="100000000",
        **env,
    )
    first.start()
    marks = output_marks(kafka_bootstrap)
    feed = Feed(kafka_bootstrap)
    try:
        feed.publish([good(make_event(uc, cost=0.625, seconds=s)) for s in (0, 1)])  # $1.25
        feed.flush()
        ((partition, tripping),) = {feed.positions[1]}
        wait_for(
            lambda: (first.metric_total("spendfuse_events_accepted_total") or 0) >= 2,
            "both events handled: the command decided",
            60,
        )
        # a worker that sends commands as it decides has them on the topic within moments;
        # one that holds them until the commit never will: kill it either way after that
        _within(
            5.0,
            lambda: [
                c
                for c in read_json(kafka_bootstrap, topics.CONTROL, marks[topics.CONTROL])
                if c.get("use_case_id") == uc
            ],
        )
        assert committed(kafka_bootstrap, app_id)[partition] <= tripping  # not committed yet
        first.kill()
    finally:
        first.stop()

    (tmp_path / "second").mkdir()
    second = ClusterWorker(kafka_bootstrap, tmp_path / "second", **FAST_COMMITS, **env).start()
    try:
        wait_caught_up(kafka_bootstrap, app_id, feed.ends(), "re-handled", 60, second)
    finally:
        second.stop()

    result = audit(kafka_bootstrap, app_id, feed, outputs_since=marks)
    assert sum(result.commands.values()) == 1, result.commands
    assert sum(result.alerts.values()) == 1, result.alerts
    assert window_spend(latest_states(kafka_bootstrap, app_id), uc) == 1.25
    assert expected_spend(feed.sent) == {uc: (1.25, 0.625)}


@pytest.mark.timeout(300)
def test_broker_restart_mid_stream_loses_and_repeats_nothing(tmp_path: Path) -> None:
    broker = LocalKafka(tmp_path / "kafka", partitions=4)
    bootstrap = broker.start()
    app_id = f"spendfuse-outage-{uuid.uuid4().hex[:6]}"
    use_cases = [unique("outage") for _ in range(4)]
    plan = plan_stream(use_cases, 100)  # $0.0625..$0.25 an event: each crosses $6 once
    third = len(plan) // 3
    worker = ClusterWorker(bootstrap, tmp_path, SPENDFUSE_APP_ID=app_id, **FAST_COMMITS, **LEAN)
    try:
        worker.start()
        feed = Feed(bootstrap)
        feed.publish(plan[:third])
        feed.flush()
        broker.stop(keep_data=True)  # while the worker is still busy with those
        feed.publish(plan[third : 2 * third])  # held by the idempotent producer meanwhile
        feed.poll(0.5)
        assert len(feed.positions) == third  # none of them could be delivered
        broker.start()
        feed.publish(plan[2 * third :])
        feed.flush()
        wait_caught_up(bootstrap, app_id, feed.ends(), "catch-up", 180, worker)
        assert worker.alive  # it reconnected by itself
        result = audit(bootstrap, app_id, feed)
    finally:
        worker.stop()
        broker.stop()
    _assert_accounted(result, use_cases)
    assert result.dlq_copies == result.dead_lettered  # no restart of the worker: no re-handling


@pytest.mark.timeout(420)
def test_kill_9_mid_commit_flush_loses_no_alert_or_command(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Three kills, each while the worker is flushing a commit, under load: afterwards every
    use case's firing alert and its command are on their topics, and every event counts once.

    Before outputs were acknowledged ahead of the ids, a kill there left the ids written and
    the alerts unsent: the restarted worker took the events for duplicates and never sent them.
    """
    app_id = f"spendfuse-midflush-{uuid.uuid4().hex[:6]}"
    use_cases = [unique("midflush") for _ in range(12)]
    plan = plan_stream(use_cases, 100)  # each use case crosses the $6 limit once
    parts = [plan[i::4] for i in range(4)]  # interleaved: every part has every use case
    env = {
        "SPENDFUSE_APP_ID": app_id,
        "SPENDFUSE_DATA_DIR": str(tmp_path / "data"),
        "SPENDFUSE_COMMIT_INTERVAL_S": "0.1",
        **LEAN,
    }
    marks = output_marks(kafka_bootstrap)
    feed = Feed(kafka_bootstrap)
    kills = 0
    for round_ in range(3):
        (tmp_path / f"w{round_}").mkdir()
        worker = ClusterWorker(kafka_bootstrap, tmp_path / f"w{round_}", **env).start()
        try:
            feed.publish_in_background(parts[round_], rate_per_s=150)
            if round_ == 0:  # a first commit, so that restarts resume from the group's offsets
                wait_for(
                    lambda: any(o > 0 for o in committed(kafka_bootstrap, app_id).values()),
                    "a first commit",
                    60,
                )
            kills += kill_mid_flush(worker)
            feed.join()
        finally:
            worker.stop()
    (tmp_path / "last").mkdir()
    last = ClusterWorker(kafka_bootstrap, tmp_path / "last", **env).start()
    try:
        feed.publish(parts[3])
        feed.flush()
        # a bound on progress: the last worker waits out three killed members' sessions and
        # restores their tables first (seconds idle; once over 120 s in a full suite run)
        wait_caught_up(kafka_bootstrap, app_id, feed.ends(), "catch-up", 240, last)
        result = audit(kafka_bootstrap, app_id, feed, outputs_since=marks)
    finally:
        last.stop()
    assert kills == 3, f"caught the worker mid-flush {kills} times of 3"
    _assert_accounted(result, use_cases, copies_ok=True)  # every alert and command id is there
