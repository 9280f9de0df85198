"""An anomaly watch goes on with the detector it saved (``rules/signals.py``) instead of
restoring it from plain data at every bucket close; that shortcut decides exactly what the
restore decides.

The same simulated day and a half (to the end of its runaway loop) runs through the pipeline
twice: once as replay runs it, and once with every use case's and tenant's state read back
from its JSON after each pass (what a worker that restarts, or a state store that hands back
copies, does), which makes every watch restore its detector. Both must publish the same
alerts and commands, anomaly alerts among them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from spendfuse.dedup import MemoryDedupStore
from spendfuse.rules import signals
from spendfuse.rules_runtime import build_pipeline
from spendfuse.schemas.codec import encode
from spendfuse.settings import Settings
from spendfuse.simulate import default_fleet, default_incidents, simulate_fleet

_START = datetime(2026, 11, 2, tzinfo=UTC)


def _records() -> list[bytes]:
    incidents = default_incidents(_START, 1)
    events = simulate_fleet(default_fleet(), _START, timedelta(hours=34, minutes=40), incidents, 1)
    return [orjson.dumps(e) for e in events]


def _run(records: list[bytes], *, reload_states: bool) -> tuple[list[bytes], list[bytes]]:
    pipeline = build_pipeline(Settings())
    dedup = MemoryDedupStore()
    states: dict[str, Any] = {}
    tenant_states: dict[str, Any] = {}
    alerts: list[bytes] = []
    commands: list[bytes] = []
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for start in range(0, len(records), 250):
        chunk = records[start : start + 250]
        out = pipeline.run_records(chunk, now, dedup, states, tenant_states, first_offset=start)
        alerts.extend(encode(a) for a in out.decisions.alerts)
        commands.extend(encode(c) for c in out.decisions.commands)
        if reload_states:
            for held in (states, tenant_states):
                for key, state in held.items():
                    held[key] = orjson.loads(orjson.dumps(state))
    return alerts, commands


def test_kept_detectors_decide_what_restored_ones_decide() -> None:
    records = _records()
    signals._LIVE.clear()
    kept = _run(records, reload_states=False)
    assert signals._LIVE, "the watches went on with their saved detectors"
    signals._LIVE.clear()
    restored = _run(records, reload_states=True)
    assert kept == restored
    rules = {orjson.loads(a)["rule"] for a in kept[0]}
    assert any(rule.endswith("_anomaly") for rule in rules), rules
