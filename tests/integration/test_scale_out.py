"""Scale-out: two workers in one consumer group over an 8-partition input.

The session broker's input topic has the suite's 4 partitions (every worker's tables are
co-partitioned with it, so the count cannot change under them); these tests run their own
broker whose topics have 8, with ``SPENDFUSE_PARTITIONS=8`` for its workers.

* Two workers decide exactly what one worker decides on the same input (same alert ids, rules,
  use cases, statuses, command ids) and end with the same per-use-case state.
* One of the two is killed with SIGKILL: the other takes over its partitions, restores their
  state from the changelog (Faust keeps a standby replica of each table partition on the other
  worker by default) and goes on; the alert that needs spend from before *and* after the kill
  fires once for every use case, with its one command.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spendfuse.localkafka import LocalKafka
from spendfuse.schemas import topics
from tests.support.cluster import (
    SPEND_RULE,
    Feed,
    Planned,
    again,
    audit,
    bad,
    end_offsets,
    good,
    group_worker,
    latest_states,
    output_marks,
    position_group,
    read_json,
    start_group,
    stop_all,
    wait_caught_up,
    wait_group,
    window_spend,
)
from tests.support.events import make_event, unique
from tests.support.rules import spend_limit_yaml, temp_rules_env
from tests.support.waiting import wait_for

PARTITIONS = 8
LIMIT_USD = 1.0
ENV = {
    "SPENDFUSE_PARTITIONS": str(PARTITIONS),
    **temp_rules_env(spend_limit_yaml(LIMIT_USD), default_pack=False),  # the spend-rate rule
    "SPENDFUSE_COMMIT_INTERVAL_S": "0.5",
}


@pytest.fixture(scope="module")
def broker8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broker = LocalKafka(tmp_path_factory.mktemp("kafka8"), partitions=PARTITIONS)
    try:
        yield broker.start()
    finally:
        broker.stop()


def _decision_mix(use_cases: list[str]) -> list[Planned]:
    """Per use case, by ``index % 3``: over the limit in minute 0 then back under (fires,
    resolves and restores); over in minutes 0 and 1 (fires once, stays firing); always under.
    A repeat of an event and a bad record per use case ride along."""
    plan: list[Planned] = []
    for i, uc in enumerate(use_cases):
        kind = i % 3
        per_event = 0.25 if kind == 2 else 0.5
        minute0 = [make_event(uc, cost=per_event, seconds=s) for s in (0, 10, 20)]
        plan += [good(e) for e in minute0]
        plan.append(again(plan[-2]))
        plan.append(bad(uc, i))
        if kind == 0:
            plan += [good(make_event(uc, cost=0.25, seconds=60 + s)) for s in (0, 120)]
        elif kind == 1:
            plan += [good(make_event(uc, cost=0.5, seconds=60 + s)) for s in (0, 10, 20)]
    return plan


def _decisions(bootstrap: str, since: dict[str, dict[int, int]], use_cases: set[str]) -> Counter:
    """Alerts and commands for ``use_cases`` published after ``since``, without timestamps."""
    out: Counter[tuple[Any, ...]] = Counter()
    for a in read_json(bootstrap, topics.ALERTS, since[topics.ALERTS]):
        if a.get("use_case_id") in use_cases:
            out[
                "alert",
                a["alert_id"],
                a["rule"],
                a["status"],
                a["use_case_id"],
                a["fingerprint"],
                a["evidence"]["value"],
                tuple(a["actions_taken"]),
            ] += 1
    for c in read_json(bootstrap, topics.CONTROL, since[topics.CONTROL]):
        if c.get("use_case_id") in use_cases:
            out[
                "command",
                c["command_id"],
                c["kind"],
                c["target"]["id"],
                c.get("level"),
                c["issued_by"],
                c.get("alert_fingerprint"),
            ] += 1
    return out


def test_two_workers_decide_what_one_worker_decides(broker8: str, tmp_path: Path) -> None:
    use_cases = [unique("scale") for _ in range(24)]
    two_id, one_id = f"sf-two-{uuid.uuid4().hex[:6]}", f"sf-one-{uuid.uuid4().hex[:6]}"

    # the pair first, settled before the input arrives, so that each gets its share
    pair, owners = start_group(broker8, tmp_path, two_id, 2, **ENV)
    try:
        assert sorted(len(parts) for parts in owners.values()) == [4, 4], owners
        start = end_offsets(broker8, topics.COST_EVENTS)
        marks_two = output_marks(broker8)
        feed = Feed(broker8)
        feed.publish(_decision_mix(use_cases))
        feed.flush()
        wait_caught_up(broker8, two_id, feed.ends(), "two workers done", 60, *pair)
        loads = [w.events_in() for w in pair]
    finally:
        stop_all(pair)
    by_two = _decisions(broker8, marks_two, set(use_cases))

    marks_one = output_marks(broker8)
    position_group(broker8, one_id, start)  # the single worker reads the very same records
    one = group_worker(broker8, tmp_path, one_id, "single", **ENV).launch()
    try:
        wait_for(one.ready, "the single worker", 90)
        wait_caught_up(broker8, one_id, feed.ends(), "one worker done", 60, one)
    finally:
        one.stop()
    by_one = _decisions(broker8, marks_one, set(use_cases))

    assert all(n and n > 0 for n in loads), loads  # both workers of the pair had work
    assert sum(loads) == len(feed.sent), (loads, len(feed.sent))  # once each, no rebalance
    # what the rules must decide, once each: 16 fire (8 of them resolve, with a restore)
    statuses = Counter(k[3] for k in by_one.elements() if k[0] == "alert")
    kinds = Counter(k[2] for k in by_one.elements() if k[0] == "command")
    assert statuses == {"firing": 16, "resolved": 8}, statuses
    assert kinds == {"degrade": 16, "restore": 8}, kinds
    assert max(by_one.values()) == 1 and max(by_two.values()) == 1
    assert by_two == by_one
    states_one, states_two = latest_states(broker8, one_id), latest_states(broker8, two_id)
    for uc in use_cases:
        assert states_two[uc].get(SPEND_RULE) == states_one[uc].get(SPEND_RULE), uc
        assert window_spend(states_two, uc) == window_spend(states_one, uc), uc


def test_survivor_takes_over_a_killed_workers_partitions(broker8: str, tmp_path: Path) -> None:
    app_id = f"sf-takeover-{uuid.uuid4().hex[:6]}"
    use_cases = [unique("takeover") for _ in range(16)]
    # 3 x $0.1875 before the kill and 3 after: $0.5625 is under the $1 limit, only the sum
    # of both halves ($1.125) crosses it, on the 3rd event after the kill.
    half = 0.1875
    before = [good(make_event(uc, cost=half, seconds=k)) for k in range(3) for uc in use_cases]
    after = [good(make_event(uc, cost=half, seconds=10 + k)) for k in range(3) for uc in use_cases]

    workers, owners = start_group(broker8, tmp_path, app_id, 2, **ENV)
    try:
        marks = output_marks(broker8)
        feed = Feed(broker8)
        feed.publish(before)
        feed.flush()
        wait_caught_up(broker8, app_id, feed.ends(), "pre-kill input committed", 60, *workers)
        quiet = read_json(broker8, topics.ALERTS, marks[topics.ALERTS])
        assert not [a for a in quiet if a.get("use_case_id") in use_cases]

        workers[1].kill()  # SIGKILL: no leave-group, no last commit
        feed.publish(after)  # arrives while the killed worker's partitions are orphaned
        feed.flush()
        (survivor,) = wait_group(broker8, app_id, 1, timeout_s=90)
        # a bound on progress, not a speed target: restoring the killed worker's tables and
        # catching up takes a few seconds idle, but minutes on a loaded 2-core machine
        wait_caught_up(broker8, app_id, feed.ends(), "survivor caught up", 240, workers[0])
        assert workers[0].alive
    finally:
        stop_all(workers)

    orphaned = set().union(*(p for member, p in owners.items() if member != survivor))
    assert len(orphaned) == PARTITIONS // 2, owners
    partition_of = {rec.use_case_id: feed.positions[i][0] for i, rec in enumerate(feed.sent)}
    taken_over = [uc for uc in use_cases if partition_of[uc] in orphaned]
    assert taken_over, (partition_of, orphaned)

    result = audit(broker8, app_id, feed, outputs_since=marks)
    assert result.lost == {} and result.double_counted == {}
    states = latest_states(broker8, app_id)
    assert all(window_spend(states, uc) == 6 * half for uc in use_cases)
    assert result.firing_by_use_case == dict.fromkeys(use_cases, 1), result.firing_by_use_case
    assert result.duplicated_alerts == {} and result.duplicated_commands == {}
    assert len(result.commands) == len(use_cases)
