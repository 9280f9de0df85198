"""``spendfuse replay``: run the worker's pipeline over a JSONL file, with no broker.

Each line is one record's value exactly as a producer would publish it: one event, or an
envelope of many. Lines are handled 1,000 at a time (:meth:`Pipeline.run_records`), deciding
exactly what the worker decides record by record. Alerts, commands and dead
letters are written as JSONL with the same models (and bytes) as the topics carry. Hourly rollups
are kept as a compacted topic keeps them (the latest record of each key), with the hours still
open at the end of the file published last, as the worker's periodic flush does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.finops.outcomes import ledger_view
from spendfuse.pipeline import OUTCOMES_KEY, Outcome, Pipeline
from spendfuse.schemas.codec import encode
from spendfuse.schemas.rollup import CostRollup, rollup_key


@dataclass
class ReplayResult:
    outcomes: Counter[str] = field(default_factory=Counter)
    alerts: list[bytes] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)
    dead_letters: list[bytes] = field(default_factory=list)
    rollups: dict[bytes, CostRollup] = field(default_factory=dict)  # latest per rollup key
    outcome_views: dict[str, Any] = field(default_factory=dict)  # use case -> cost per success
    outcomes_dead_lettered: int = 0


def iter_records(path: Path) -> Iterator[bytes]:
    """Non-empty lines of a JSONL file, as raw bytes (a bad line is still a record)."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield line


def replay_records(
    records: Iterable[bytes],
    pipeline: Pipeline,
    now: datetime | None = None,
    outcomes: Iterable[bytes] = (),
    batch: int = 1000,
) -> ReplayResult:
    """Cost event records through both stages, then outcome records into the use cases'
    ledgers (outcome economics do not depend on how the two streams interleave).

    ``batch`` records at a time go through :meth:`Pipeline.run_records`, which decides exactly
    what they decide one record at a time (``batch=1`` is record by record)."""
    now = now or datetime.now(UTC)
    dedup = MemoryDedupStore()
    states: dict[str, Any] = {}
    tenant_states: dict[str, Any] = {}
    result = ReplayResult()
    lines = iter(records)
    offset = 0
    while chunk := list(islice(lines, max(batch, 1))):
        handled = pipeline.run_records(
            chunk, now, dedup, states, tenant_states, first_offset=offset
        )
        offset += len(chunk)
        counts = (
            (Outcome.DEAD_LETTERED, len(handled.dead_letters)),
            (Outcome.ACCEPTED, handled.accepted),
            (Outcome.DUPLICATE, handled.duplicates),
        )
        for outcome, n in counts:
            if n:
                result.outcomes[outcome.value] += n
        result.dead_letters.extend(encode(dead) for dead in handled.dead_letters)
        result.alerts.extend(encode(a) for a in handled.decisions.alerts)
        result.commands.extend(encode(c) for c in handled.decisions.commands)
        for row in handled.rollups:
            result.rollups[rollup_key(row)] = row
    for raw in outcomes:
        handled = pipeline.run_outcome(raw, now, states)
        if handled.dead_letter is not None:
            result.outcomes_dead_lettered += 1
            result.dead_letters.append(encode(handled.dead_letter))
    for use_case, state in states.items():
        for row in pipeline.rollups.open_rows(state):  # the hours still open, as the worker's
            result.rollups[rollup_key(row)] = row  # flush publishes them
        if OUTCOMES_KEY in state:
            result.outcome_views[use_case] = ledger_view(state[OUTCOMES_KEY])
    return result


def write_result(result: ReplayResult, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in (
        ("alerts.jsonl", result.alerts),
        ("commands.jsonl", result.commands),
        ("dead_letters.jsonl", result.dead_letters),
    ):
        (out_dir / name).write_bytes(b"".join(row + b"\n" for row in rows))


def write_outcomes(result: ReplayResult, path: Path) -> None:
    """Each use case's outcome economics (cost per success, ROI) as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        orjson.dumps(result.outcome_views, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)
    )


def write_rollups(result: ReplayResult, path: Path) -> int:
    """The rollups as JSONL, one record per key (what ``spendfuse report --rollups`` reads)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = sorted(result.rollups.items())
    path.write_bytes(b"".join(encode(row) + b"\n" for _, row in rows))
    return len(rows)
