"""``spendfuse rules backtest``: replay history through a rules directory, summarize per rule.

It runs the very pipeline the worker runs (both stages), so what it reports is what the rules
would have published: per rule, how many incidents fired and resolved, how many commands it
would have issued (enforce and shadow) and when it fired.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from spendfuse.pipeline import Pipeline
from spendfuse.replay import iter_records, replay_records


@dataclass
class RuleStats:
    rule: str
    firing: int = 0
    resolved: int = 0
    enforce: int = 0
    shadow: int = 0
    held: int = 0
    fired_at: list[str] = field(default_factory=list)


def backtest(records: Iterable[bytes], pipeline: Pipeline) -> list[RuleStats]:
    result = replay_records(records, pipeline)
    stats: dict[str, RuleStats] = {}
    for raw in result.alerts:
        alert = orjson.loads(raw)
        row = stats.setdefault(alert["rule"], RuleStats(alert["rule"]))
        if alert["status"] == "firing":
            row.firing += 1
            row.held += bool(alert.get("guardrail_held"))
            row.fired_at.append(alert["fired_at"])
        else:
            row.resolved += 1
    for raw in result.commands:
        cmd = orjson.loads(raw)
        rule = cmd["issued_by"].removeprefix("rule:")
        row = stats.setdefault(rule, RuleStats(rule))
        if cmd["mode"] == "shadow":
            row.shadow += 1
        else:
            row.enforce += 1
    return sorted(stats.values(), key=lambda r: r.rule)


def format_table(rows: list[RuleStats]) -> str:
    head = ("rule", "alerts", "resolved", "commands", "shadow", "held", "first fired", "last fired")
    lines = [head] + [
        (
            r.rule,
            str(r.firing),
            str(r.resolved),
            str(r.enforce),
            str(r.shadow),
            str(r.held),
            min(r.fired_at, default="-"),
            max(r.fired_at, default="-"),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    out = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)


def backtest_file(events: Path, pipeline: Pipeline) -> list[RuleStats]:
    return backtest(iter_records(events), pipeline)
