"""Incident detection on simulated fleets: time to alert per incident kind, false alerts.

    python benchmarks/incident_detection.py [--seeds 20] [--days 5] [--out runs.jsonl] [--jobs 2]
    python benchmarks/incident_detection.py --default-week      # the hand-made week of before

Each seed draws its own fleet and incidents (``spendfuse.simulate.random_scenario``: busy and
thin use cases, weekend patterns, sustained spikes, gradual ramps, unit-cost incidents, runaway
loops, new use cases with an incident in their first day) and runs the events through the full
pure pipeline -- ``build_pipeline(Settings())`` (``Engine.default`` with the rule files) driven by
``replay_records``, exactly as ``spendfuse replay`` does -- so it measures whatever rules and
detectors the product runs today.

Printed, per incident kind and traffic class (``busy``: >= 1 event a minute before the change;
``thin``: fewer): how many were alerted within 10 and 30 minutes and at all, and time to alert
p50 / p90 in minutes, counted from the instant the change reaches 2x (``change_at``; a ramp's
start is earlier). A miss counts as never, so p90 reads "miss" when over a tenth were missed.
Any firing alert on the use case from the incident's start to an hour after its end counts.
Every other firing alert is false: false alerts per use-case-week of normal traffic, by rule.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from spendfuse.replay import replay_records
from spendfuse.rules_runtime import build_pipeline
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, default_incidents, random_scenario, simulate_fleet

GRACE_AFTER_END = timedelta(hours=1)
WEEK_S = 7 * 86400.0


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _replay(events: list[bytes]) -> tuple[list[dict[str, Any]], float]:
    t0 = time.perf_counter()
    result = replay_records(events, build_pipeline(Settings()))
    eps = len(events) / max(time.perf_counter() - t0, 1e-9)
    alerts = [orjson.loads(a) for a in result.alerts]
    return [a for a in alerts if a["status"] == "firing"], eps


def run_seed(args: tuple[int, float]) -> dict[str, Any]:
    """One seed: simulate, replay, and match alerts to incidents (plain data for the pool)."""
    seed, days = args
    sc = random_scenario(seed, days)
    events = [
        orjson.dumps(e) for e in simulate_fleet(sc.fleet, sc.start, sc.duration, sc.incidents, seed)
    ]
    firing, eps = _replay(events)
    labels = sc.labels()
    rows, matched = [], set()
    for lab in labels:
        start, end = _t(lab["start"]), _t(lab["end"]) + GRACE_AFTER_END
        change = _t(lab["change_at"])
        hits = sorted(
            (
                a
                for a in firing
                if a["use_case_id"] == lab["use_case_id"] and start <= _t(a["fired_at"]) <= end
            ),
            key=lambda a: a["fired_at"],
        )
        matched |= {a["alert_id"] for a in hits}
        tta = max((_t(hits[0]["fired_at"]) - change).total_seconds() / 60, 0.0) if hits else None
        rows.append(
            {
                "kind": lab["kind"],
                "traffic": lab["traffic"],
                "tta_min": tta,
                "rule": hits[0]["rule"] if hits else None,
                "new_use_case": lab["use_case_id"].startswith("new-"),
                "seed": seed,
            }
        )
    end_of_run = sc.start + sc.duration
    normal_s = 0.0
    for p in sc.fleet.use_cases:
        born = max(p.history_start or sc.start, sc.start)
        normal_s += (end_of_run - born).total_seconds()
        for inc in sc.incidents:
            if inc.use_case_id == p.use_case_id:
                normal_s -= (min(inc.end + GRACE_AFTER_END, end_of_run) - inc.start).total_seconds()
    false = [a["rule"] for a in firing if a["alert_id"] not in matched]
    return {
        "seed": seed,
        "rows": rows,
        "false": false,
        "normal_weeks": normal_s / WEEK_S,
        "events": len(events),
        "eps": eps,
    }


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile; misses are +inf."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def _fmt(v: float) -> str:
    return "miss" if math.isinf(v) else f"{v:.1f}"


def report(results: list[dict[str, Any]]) -> None:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    first_rules: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for r in results:
        for row in r["rows"]:
            for key in ((row["kind"], row["traffic"]), ("ALL", row["traffic"])):
                groups[key].append(math.inf if row["tta_min"] is None else row["tta_min"])
            if row["rule"]:
                first_rules[(row["kind"], row["traffic"])][row["rule"]] += 1
            if row["new_use_case"]:
                tta = math.inf if row["tta_min"] is None else row["tta_min"]
                groups[("new use case (1st day)", row["traffic"])].append(tta)
    print(
        f"\n| {'incident kind':<24} | traffic |  n | <=10 min | <=30 min | alerted | "
        f"p50 min | p90 min | first rule (most often) |"
    )
    print(
        f"|{'-' * 26}|---------|----|----------|----------|---------|---------|---------|"
        f"{'-' * 25}|"
    )
    for (kind, traffic), v in sorted(groups.items(), key=lambda kv: (kv[0][0] == "ALL", kv[0])):
        n = len(v)
        rule = first_rules[(kind, traffic)].most_common(1)
        print(
            f"| {kind:<24} | {traffic:<7} | {n:>2} | {sum(x <= 10 for x in v):>8} | "
            f"{sum(x <= 30 for x in v):>8} | {sum(math.isfinite(x) for x in v):>7} | "
            f"{_fmt(_pct(v, 0.5)):>7} | {_fmt(_pct(v, 0.9)):>7} | "
            f"{rule[0][0] if rule else '-':<23} |"
        )
    false = Counter(rule for r in results for rule in r["false"])
    weeks = sum(r["normal_weeks"] for r in results)
    total = sum(false.values())
    print(
        f"\nfalse alerts: {total} over {weeks:.1f} use-case-weeks of normal traffic = "
        f"{total / weeks:.2f} per use-case-week  by rule: {dict(false.most_common())}"
    )
    events = sum(r["events"] for r in results)
    eps = sorted(r["eps"] for r in results)[len(results) // 2]
    print(f"{len(results)} seeds, {events:,} events, replay median {eps:,.0f} events/s per process")


def default_week(days: float, seed: int) -> None:
    """The hand-made fleet week (one incident of each original kind) of earlier measurements."""
    start = datetime(2026, 11, 2, tzinfo=UTC)
    labels = default_incidents(start, int(days))
    events = [
        orjson.dumps(e)
        for e in simulate_fleet(default_fleet(), start, timedelta(days=days), labels, seed)
    ]
    firing, eps = _replay(events)
    print(f"== default week ({days:g} days, replay {eps:,.0f} events/s)")
    for inc in labels:
        lab = inc.label()
        hits = [
            a
            for a in firing
            if a["use_case_id"] == lab["use_case_id"]
            and inc.start <= _t(a["fired_at"]) <= inc.end + GRACE_AFTER_END
        ]
        first = min(hits, key=lambda a: a["fired_at"]) if hits else None
        verdict = (
            f"{(_t(first['fired_at']) - inc.start).total_seconds() / 60:5.1f} min by "
            f"{first['rule']}"
            if first
            else "no alert"
        )
        tag = "" if lab["is_incident"] else " (not an incident: must stay quiet)"
        print(f"  {lab['kind']:<18} {lab['use_case_id']:<20} {verdict}{tag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=20, help="number of seeds (1..N)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--days", type=float, default=5.0)
    ap.add_argument("--jobs", type=int, default=2, help="processes (one seed each)")
    ap.add_argument("--out", type=Path, help="append each seed's result to this JSONL file")
    ap.add_argument("--report", type=Path, help="only print the report of a --out file")
    ap.add_argument(
        "--default-week", action="store_true", help="run the hand-made default fleet week instead"
    )
    args = ap.parse_args()
    if args.default_week:
        default_week(args.days, args.first_seed)
        return
    if args.report:
        results = [orjson.loads(line) for line in args.report.read_bytes().splitlines() if line]
        report(sorted(results, key=lambda r: r["seed"]))
        return
    seeds = [(s, args.days) for s in range(args.first_seed, args.first_seed + args.seeds)]
    t0 = time.perf_counter()
    results = []
    out = args.out.open("ab") if args.out else None
    with mp.get_context("fork").Pool(max(args.jobs, 1)) as pool:
        for r in pool.imap_unordered(run_seed, seeds):
            results.append(r)
            if out:  # each seed as it finishes: a long run interrupted still reports
                out.write(orjson.dumps(r) + b"\n")
                out.flush()
            print(
                f"seed {r['seed']}: {r['events']:,} events, {len(r['false'])} false alerts",
                flush=True,
            )
    results.sort(key=lambda r: r["seed"])
    report(results)
    print(f"wall {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
