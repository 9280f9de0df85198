"""Incident detection on simulated fleet traffic: detected or missed, time to detect, false alerts.

    python benchmarks/incident_detection.py [--days 7] [--normal-days 14] [--seed 1]

Runs the default configuration (default rule pack, spend-rate rule, anomaly watches: the same
pipeline as the worker and ``spendfuse replay``) over
(1) a simulated fleet week with one injected incident of each kind and (2) weeks of normal
traffic, and prints per incident kind: detected or missed, by which rule, time to detect; and
false alerts per use-case-week on normal traffic. Traffic growth at flat unit cost is labelled
"not an incident": any alert on it counts as false.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from spendfuse.replay import replay_records
from spendfuse.rules_runtime import build_pipeline
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, default_incidents, simulate_fleet

GRACE_AFTER_END = timedelta(hours=1)


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def run(days: float, seed: int, incidents: bool) -> tuple[list[dict[str, Any]], list[dict], float]:
    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    labels = default_incidents(start, int(days)) if incidents else []
    events = [orjson.dumps(e) for e in simulate_fleet(default_fleet(), start,
                                                      timedelta(days=days), labels, seed)]
    t0 = time.perf_counter()
    result = replay_records(events, build_pipeline(Settings()))
    eps = len(events) / (time.perf_counter() - t0)
    alerts = [orjson.loads(a) for a in result.alerts]
    return [a for a in alerts if a["status"] == "firing"], [i.label() for i in labels], eps


def score_incidents(firing: list[dict], labels: list[dict]) -> tuple[list[str], int]:
    rows, matched = [], set()
    for lab in labels:
        start, end = _t(lab["start"]), _t(lab["end"]) + GRACE_AFTER_END
        hits = [a for a in firing if a["use_case_id"] == lab["use_case_id"]
                and start <= _t(a["fired_at"]) <= end]  # fmt: skip
        matched |= {a["alert_id"] for a in hits}
        if not lab["is_incident"]:
            rows.append(f"{lab['kind']:<18} {lab['use_case_id']:<20} not an incident: "
                        f"{len(hits)} alerts (must be 0) {sorted({a['rule'] for a in hits})}")
            continue
        if hits:
            first = min(hits, key=lambda a: a["fired_at"])
            ttd = (_t(first["fired_at"]) - start).total_seconds() / 60
            rules = sorted({f"{a['rule']} {(_t(a['fired_at']) - start).total_seconds() / 60:.0f}m"
                            for a in hits})
            rows.append(f"{lab['kind']:<18} {lab['use_case_id']:<20} DETECTED in {ttd:5.1f} min "
                        f"by {first['rule']} (all: {', '.join(rules)})")
        else:
            rows.append(f"{lab['kind']:<18} {lab['use_case_id']:<20} MISSED")
    unexplained = [a for a in firing if a["alert_id"] not in matched
                   or any(a["use_case_id"] == lab["use_case_id"] and not lab["is_incident"]
                          and _t(lab["start"]) <= _t(a["fired_at"]) <= _t(lab["end"])
                          for lab in labels)]  # fmt: skip
    return rows, len(unexplained)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--normal-days", type=float, default=14.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    n_uc = len(default_fleet().use_cases)

    firing, labels, eps = run(args.days, args.seed, incidents=True)
    rows, false_in_incident_run = score_incidents(firing, labels)
    print(f"== incident week ({args.days:g} days, {n_uc} use cases, replay {eps:,.0f} events/s)")
    for row in rows:
        print("  " + row)
    print(f"  alerts outside incident windows: {false_in_incident_run}")

    normal, _, _ = run(args.normal_days, args.seed + 1, incidents=False)
    weeks = args.normal_days / 7
    by_rule = Counter(a["rule"] for a in normal)
    print(f"== normal traffic ({args.normal_days:g} days): {len(normal)} false alerts = "
          f"{len(normal) / (n_uc * weeks):.2f} per use-case-week  {dict(by_rule)}")


if __name__ == "__main__":
    main()
