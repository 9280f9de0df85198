"""Fault injection at scale on a real broker: does every input record survive a crash?

    python benchmarks/fault_injection.py [--events 20000] [--rate 2000] [--use-cases 16]

Starts its own local broker and, per scenario, a ``spendfuse worker`` (the built-in spend-rate
rule, default commit settings: every 1 s or 10 000 records). A stream of good events, repeats
of good events (10 %) and bad records (2 %) is published at ``--rate`` while the worker runs;
once it has handled 40 % of them the fault is injected:

* ``worker kill -9``: the worker is SIGKILLed and a new one started on the same data directory;
* ``broker restart``: the broker is stopped (controlled shutdown) and started again on the same
  port and data, the worker left alone;
* ``broker kill -9``: the same with the broker SIGKILLed (log recovery on start);
* ``20 kills mid-flush``: the worker is SIGKILLed 20 times in a row, each time while it is
  inside an offset commit's flush (frozen at random moments and its stack read with py-spy
  until it is caught there), and a new one started each time; the stream is paced to last
  through all of them.

Recovery time: from the fault until the worker commits again ("resumed"), and until it has
committed every record published before the fault ("caught up"; the ``no fault`` row measures
the same without a fault: the backlog a worker carries at this rate). Then the whole stream is
accounted for from the broker (tests/support/cluster.py): each use case's spend in the state
table's changelog against the exact sum of its distinct events (``lost`` counts events missing
from it), every bad record's offset in the dead-letter topic, and copies of each command id on
the control topic, and that every use case's firing alert and command exist (the
``alerts / commands missing`` column: a lost output shows there).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the harness in tests/support

from spendfuse.localkafka import LocalKafka
from spendfuse.schemas import topics
from tests.support.cluster import (
    UNIT_USD,
    Audit,
    ClusterWorker,
    Feed,
    audit,
    caught_up,
    committed,
    end_offsets,
    kill_mid_flush,
    output_marks,
    plan_stream,
)
from tests.support.waiting import wait_for

FAULT_AT = 0.4  # of the stream handled when the fault is injected


@dataclass
class Row:
    scenario: str
    events: int
    rate: float
    fault: str
    resumed_s: float  # fault -> first commit beyond what was committed at the fault
    recovery_s: float  # fault -> every record published before the fault committed
    backlog: int  # records published but not yet handled when the fault hit
    result: Audit
    handled_again: int
    use_cases: int = 0
    kills: int = 0


def worker_env(app_id: str, data_dir: Path, limit_usd: float) -> dict[str, str]:
    """The spend-rate rule alone, at ``limit_usd`` a minute (a rules directory of its own)."""
    from tests.support.rules import rules_env, spend_limit_yaml

    return {
        "SPENDFUSE_APP_ID": app_id,
        "SPENDFUSE_DATA_DIR": str(data_dir),
        "SPENDFUSE_CONSOLE_ALERTS": "false",
        **rules_env(data_dir / "rules", spend_limit_yaml(limit_usd), default_pack=False),
    }


def run(
    name: str,
    fault_name: str,
    kafka: LocalKafka,
    tmp: Path,
    args: argparse.Namespace,
    inject: Callable[[ClusterWorker, dict[str, str], Path], ClusterWorker],
) -> Row:
    bootstrap = kafka.bootstrap_servers
    app_id = f"bench-{name.replace(' ', '-')}-{uuid.uuid4().hex[:6]}"
    per_use_case = max(int(args.events / 1.12 / args.use_cases), 1)
    use_cases = [f"{app_id}-uc{i}" for i in range(args.use_cases)]
    plan = plan_stream(use_cases, per_use_case)
    limit = 0.9 * per_use_case * UNIT_USD  # every use case crosses it once
    env = worker_env(app_id, tmp / app_id / "data", limit)
    home = tmp / app_id / "first"
    home.mkdir(parents=True)
    worker = ClusterWorker(bootstrap, home, **env).start()
    start = end_offsets(bootstrap, topics.COST_EVENTS)
    marks = output_marks(bootstrap)
    feed = Feed(bootstrap)
    rate = args.rate if "mid-flush" not in name else len(plan) / (args.kills * 20.0)
    feed.publish_in_background(plan, rate_per_s=rate)
    try:
        fault_at_share = FAULT_AT if "mid-flush" not in name else 0.05  # kills last long
        wait_for(
            lambda: (worker.events_in() or 0) >= fault_at_share * len(plan),
            "the share handled before the fault",
            300,
        )
        before = end_offsets(bootstrap, topics.COST_EVENTS)
        fault_at = time.monotonic()
        handled_before = int(worker.events_in() or 0)
        committed_before = _committed_since(bootstrap, app_id, start)
        backlog = sum(before.values()) - sum(start.values()) - handled_before
        worker = inject(worker, env, tmp / app_id)
        wait_for(
            lambda: _committed_since(bootstrap, app_id, start) > committed_before,
            "the first commit after the fault",
            600,
        )
        resumed_s = time.monotonic() - fault_at
        wait_for(lambda: caught_up(bootstrap, app_id, before), "recovery", 600)
        recovery_s = time.monotonic() - fault_at
        feed.join(600)
        feed.flush(600)
        wait_for(lambda: caught_up(bootstrap, app_id, feed.ends()), "catch-up", 600)
    finally:
        worker.stop()
    result = audit(bootstrap, app_id, feed, outputs_since=marks)
    handled_again = max(handled_before - committed_before, 0) if "worker" in fault_name else 0
    return Row(
        name,
        len(plan),
        len(plan) / feed.publish_s,
        fault_name,
        resumed_s,
        recovery_s,
        max(backlog, 0),
        result,
        handled_again,
        len(use_cases),
        getattr(worker, "kills", 0),
    )


def _committed_since(bootstrap: str, group: str, start: dict[int, int]) -> int:
    """How many input records after ``start`` the group has committed (-1: cannot tell)."""
    try:
        done = committed(bootstrap, group)
    except KafkaException:  # the broker is restarting
        return -1
    return sum(max(done.get(p, -1), s) - s for p, s in start.items())


def no_fault(worker: ClusterWorker, _env: dict[str, str], _home: Path) -> ClusterWorker:
    return worker


def kill_worker(worker: ClusterWorker, env: dict[str, str], home: Path) -> ClusterWorker:
    worker.kill()
    (home / "second").mkdir()
    return ClusterWorker(worker.bootstrap, home / "second", **env).start()


def kill_mid_flush_repeatedly(kills: int) -> Callable[..., ClusterWorker]:
    def inject(worker: ClusterWorker, env: dict[str, str], home: Path) -> ClusterWorker:
        caught = 0
        for n in range(kills):
            caught += kill_mid_flush(worker)
            worker.stop()  # if it was never caught: stopped anyway, and counted as not caught
            (home / f"w{n}").mkdir()
            worker = ClusterWorker(worker.bootstrap, home / f"w{n}", **env).start()
            print(f"  kill {n + 1}: {'mid-flush' if caught == n + 1 else 'NOT caught'}", flush=True)
        worker.kills = caught  # type: ignore[attr-defined]
        return worker

    return inject


def restart_broker(kafka: LocalKafka, hard: bool) -> Callable[..., ClusterWorker]:
    def inject(worker: ClusterWorker, _env: dict[str, str], _home: Path) -> ClusterWorker:
        kafka.restart(hard=hard)
        return worker

    return inject


def table(rows: list[Row]) -> str:
    head = (
        "scenario",
        "load (events, events/s)",
        "fault injected",
        "recovery time",
        "accepted / duplicate / dead-lettered",
        "lost",
        "alerts / commands missing",
        "commands duplicated",
    )
    lines = []
    for r in rows:
        a = r.result
        again = (
            f" (+{a.dlq_copies - a.dead_lettered} again)" if a.dlq_copies > a.dead_lettered else ""
        )
        lost = str(a.events_lost) + (
            f" (+{a.events_double_counted} counted twice)" if a.events_double_counted else ""
        )
        lines.append(
            (
                r.scenario,
                f"{r.events:,} @ {r.rate:,.0f}/s",
                r.fault,
                f"resumed {r.resumed_s:.1f} s, caught up {r.recovery_s:.1f} s",
                f"{a.good - a.events_lost:,} / {a.duplicates:,} / {a.dead_lettered:,}{again}",
                lost,
                f"{r.use_cases - len(a.firing_by_use_case)} / {r.use_cases - len(a.commands)}",
                str(sum(n - 1 for n in a.duplicated_commands.values())),
            )
        )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]

    def fmt(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(head), sep, *(fmt(line) for line in lines)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="records per scenario")
    parser.add_argument("--rate", type=float, default=2_000, help="records published per second")
    parser.add_argument("--use-cases", type=int, default=16)
    parser.add_argument(
        "--scenarios",
        default="none,kill9,broker,broker-kill9,kill9x20",
        help="comma-separated: none, kill9, broker, broker-kill9, kill9x20",
    )
    parser.add_argument("--kills", type=int, default=20, help="kills in kill9x20")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-faults-"))
    kafka = LocalKafka(tmp / "kafka", partitions=4)
    print(f"broker at {kafka.start()}; work in {tmp}", flush=True)
    scenarios = {
        "none": ("no fault", "none (baseline)", lambda: no_fault),
        "kill9": ("worker kill -9", "SIGKILL worker, restart it", lambda: kill_worker),
        "broker": ("broker restart", "broker stop + start", lambda: restart_broker(kafka, False)),
        "broker-kill9": (
            "broker kill -9",
            "SIGKILL broker, restart it",
            lambda: restart_broker(kafka, True),
        ),
        "kill9x20": (
            f"{args.kills} kills mid-flush",
            f"SIGKILL worker x{args.kills} mid-flush",
            lambda: kill_mid_flush_repeatedly(args.kills),
        ),
    }
    rows = []
    try:
        for key in args.scenarios.split(","):
            name, fault, make = scenarios[key]
            print(f"running {name} ...", flush=True)
            row = run(name, fault, kafka, tmp, args, make())
            rows.append(row)
            print(f"  backlog when the fault hit: {row.backlog} records published, not handled")
            if row.kills:
                print(f"  caught mid-flush and killed {row.kills} times")
            if row.handled_again:
                print(f"  {row.handled_again} records handled again after the restart")
    finally:
        kafka.stop()
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
