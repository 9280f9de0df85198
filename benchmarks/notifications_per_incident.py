"""Notifications per incident group on the simulated fleet: what on-call actually receives.

    python benchmarks/notifications_per_incident.py [--days 7] [--seed 1] [--step-s 10]

Replays a simulated fleet week with one injected incident of each kind through the worker's
pipeline (default rule pack, spend-rate rule, anomaly watches), then feeds its alerts in event
time order to the notifier's dispatcher (:class:`spendfuse.rules.grouping.Dispatcher`, default
routes: group by tenant and use case, group_wait 30s, group_interval 5m, repeat 4h, inhibition
on), ticking the clock every ``--step-s`` seconds, and prints per incident group: the pages
(first notifications), the updates and repeats, and per injected incident the notifications it
caused. Goal: one page per incident group.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from statistics import mean

import orjson

from spendfuse.replay import replay_records
from spendfuse.rules.grouping import Dispatcher
from spendfuse.rules.loader import load_rules
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas.alert import Alert
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, default_incidents, simulate_fleet


def alerts_of(days: float, seed: int) -> tuple[list[Alert], list[dict]]:
    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    labels = default_incidents(start, int(days))
    events = [
        orjson.dumps(e)
        for e in simulate_fleet(default_fleet(), start, timedelta(days=days), labels, seed)
    ]
    result = replay_records(events, build_pipeline(Settings()))
    return [Alert.model_validate(orjson.loads(a)) for a in result.alerts], [
        i.label() for i in labels
    ]


def when(alert: Alert) -> datetime:
    return alert.resolved_at if alert.status == "resolved" and alert.resolved_at else alert.fired_at


def dispatch(alerts: list[Alert], step_s: int) -> list[tuple[datetime, object]]:
    disp = Dispatcher(load_rules(None, True), integrations=lambda _r: ["page"])
    queue = sorted(alerts, key=when)
    if not queue:
        return []
    t, end = when(queue[0]), when(queue[-1]) + timedelta(hours=5)
    sent, i = [], 0
    while t <= end:
        while i < len(queue) and when(queue[i]) <= t:
            disp.observe_alert(queue[i], t)
            i += 1
        sent += [(t, note) for note in disp.flush(t)]
        t += timedelta(seconds=step_s)
    return sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--days", type=float, default=7.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--step-s", type=int, default=10)
    args = ap.parse_args()
    alerts, labels = alerts_of(args.days, args.seed)
    sent = dispatch(alerts, args.step_s)
    # one incident group = one life of a group: from its page to its last alert resolving
    lives: dict[str, list[Counter]] = defaultdict(list)
    for _t, note in sent:
        if note.kind == "new":
            lives[note.group_key].append(Counter())
        if lives[note.group_key]:
            lives[note.group_key][-1][note.kind] += 1
    groups = [c for runs in lives.values() for c in runs]
    firing = sum(a.status == "firing" for a in alerts)
    print(
        f"== {args.days:g} simulated days: {firing} alerts fired, {len(sent)} notifications, "
        f"{len(groups)} incident groups"
    )
    if groups:
        per = [sum(c.values()) for c in groups]
        print(
            f"  pages per incident group: {mean(c['new'] for c in groups):.2f} "
            f"(max {max(c['new'] for c in groups)})"
        )
        print(
            f"  notifications per incident group: mean {mean(per):.2f}, max {max(per)} "
            f"(updates {sum(c['update'] for c in groups)}, repeats "
            f"{sum(c['repeat'] for c in groups)})"
        )
        print(f"  alerts per page: {firing / max(1, sum(c['new'] for c in groups)):.2f}")
    for lab in labels:
        start = datetime.fromisoformat(lab["start"].replace("Z", "+00:00"))
        stop = datetime.fromisoformat(lab["end"].replace("Z", "+00:00")) + timedelta(hours=1)
        notes = [
            n
            for t, n in sent
            if start <= t <= stop + timedelta(hours=4) and lab["use_case_id"] in n.group_key
        ]
        pages = sum(n.kind == "new" for n in notes)
        print(
            f"  {lab['kind']:<18} {lab['use_case_id']:<20} "
            f"{'incident' if lab['is_incident'] else 'not an incident':<15} pages {pages}, "
            f"notifications {len(notes)}"
        )


if __name__ == "__main__":
    main()
