"""``spendfuse replay`` handles many lines per pass (``Pipeline.run_records``) and decides exactly
what record by record decides: the same alerts and commands in the same order, the same dead
letters, outcomes, rollups and state, whatever the batch sizes (a property test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendfuse.dedup import MemoryDedupStore
from spendfuse.pipeline import Outcome, Pipeline
from spendfuse.replay import replay_records
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.schemas.codec import encode
from spendfuse.schemas.envelope import encode_envelope
from spendfuse.schemas.rollup import rollup_key
from tests.rules.test_record_batching import _PER_EVENT, _WINDOWED, _without_caches
from tests.support.events import BASE_TIME, make_event
from tests.support.rules import with_rules

NOW = datetime(2026, 12, 1, tzinfo=UTC)
_RULES = with_rules(_PER_EVENT + _WINDOWED, default_pack=True)

_EVENT = st.fixed_dictionaries(
    {
        "gap_s": st.sampled_from([0, 1, 20, 70, 400, 4000]),
        "cost": st.sampled_from([0.0, 0.05, 0.9, 1.6]),
        "use_case": st.sampled_from(["bot", "bot", "api"]),
        "tenant": st.sampled_from(["acme", "acme", "beta"]),
        "trace": st.integers(0, 3),
        "step": st.one_of(st.none(), st.integers(1, 12)),
        "outcome": st.booleans(),
    }
)
# a line: one event, an envelope of several, a line that is no event, or an earlier id again
_LINE = st.tuples(
    st.sampled_from(["one", "one", "envelope", "bad", "junk", "again"]), st.integers(1, 4)
)


def _lines(specs: list[dict[str, Any]], shapes: list[tuple[str, int]]) -> list[bytes]:
    events, seconds = [], 0.0
    for i, spec in enumerate(specs):
        seconds += spec["gap_s"]
        extra: dict[str, Any] = {"trace_id": f"t{spec['trace']}"}
        if spec["step"] is not None:
            extra["step_number"] = spec["step"]
        if spec["outcome"]:
            extra["business_outcome_id"] = f"o{i % 5}"
        events.append(
            make_event(
                spec["use_case"],
                cost=spec["cost"],
                at=BASE_TIME + timedelta(seconds=seconds),
                tenant_id=spec["tenant"],
                cost_event_id=f"e{i}",
                **extra,
            )
        )
    lines: list[bytes] = []
    i = 0
    for shape, n in shapes:
        if i >= len(events):
            break
        if shape == "bad":
            lines.append(b'{"cost_event_id": "x", "event_time": 3}')
        elif shape == "junk":
            lines.append(b"{not json")
        elif shape == "again" and i > 0:
            lines.append(orjson.dumps(events[i - n if i >= n else 0]))
        elif shape == "envelope":
            lines.append(encode_envelope(orjson.dumps(e) for e in events[i : i + n]))
            i += n
        else:
            lines.append(orjson.dumps(events[i]))
            i += 1
    lines.extend(orjson.dumps(e) for e in events[i:])
    return lines


def _pipeline() -> Pipeline:
    return Pipeline(
        Engine(_RULES),
        tenant_engine=TenantEngine(_RULES),
        outcome_ledger=True,
        max_state_bytes=4_000,  # small: the cap trims within the property's runs
    )


def _record_by_record(lines: list[bytes]) -> tuple[Any, ...]:
    """What replay did before it batched lines: run_record then run_tenant, line by line."""
    pipeline, dedup = _pipeline(), MemoryDedupStore()
    states: dict[str, Any] = {}
    tenant_states: dict[str, Any] = {}
    outcomes: dict[str, int] = {}
    alerts, commands, dead, rollups = [], [], [], {}
    for offset, raw in enumerate(lines):
        record = pipeline.run_record(raw, NOW, dedup, states, offset=offset)
        for d in record.dead_letters:
            outcomes[Outcome.DEAD_LETTERED.value] = outcomes.get("dead_lettered", 0) + 1
            dead.append(encode(d))
        for h in record.handled:
            outcomes[h.outcome.value] = outcomes.get(h.outcome.value, 0) + 1
            alerts.extend(encode(a) for a in h.decisions.alerts)
            commands.extend(encode(c) for c in h.decisions.commands)
            rollups.update((rollup_key(r), r) for r in h.rollups)
        if record.accepted:
            tenant = pipeline.run_tenant(record.accepted, tenant_states)
            alerts.extend(encode(a) for a in tenant.alerts)
            commands.extend(encode(c) for c in tenant.commands)
    return alerts, commands, dead, outcomes, rollups, _without_caches([states, tenant_states])


def _in_passes(lines: list[bytes], sizes: list[int]) -> tuple[Any, ...]:
    pipeline, dedup = _pipeline(), MemoryDedupStore()
    states: dict[str, Any] = {}
    tenant_states: dict[str, Any] = {}
    outcomes: dict[str, int] = {}
    alerts, commands, dead, rollups = [], [], [], {}
    start, k = 0, 0
    while start < len(lines):
        size = sizes[k % len(sizes)]
        k += 1
        chunk = lines[start : start + size]
        out = pipeline.run_records(chunk, NOW, dedup, states, tenant_states, first_offset=start)
        start += size
        for name, n in (
            ("dead_lettered", len(out.dead_letters)),
            ("accepted", out.accepted),
            ("duplicate", out.duplicates),
        ):
            if n:
                outcomes[name] = outcomes.get(name, 0) + n
        dead.extend(encode(d) for d in out.dead_letters)
        alerts.extend(encode(a) for a in out.decisions.alerts)
        commands.extend(encode(c) for c in out.decisions.commands)
        rollups.update((rollup_key(r), r) for r in out.rollups)
    return alerts, commands, dead, outcomes, rollups, _without_caches([states, tenant_states])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(_EVENT, min_size=1, max_size=50),
    shapes=st.lists(_LINE, max_size=50),
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=10),
)
def test_lines_in_passes_of_any_size_decide_what_record_by_record_decides(
    specs: list[dict[str, Any]], shapes: list[tuple[str, int]], sizes: list[int]
) -> None:
    lines = _lines(specs, shapes)
    assert _in_passes(lines, sizes) == _record_by_record(lines)


def test_a_busy_replay_decides_the_same_in_one_pass_as_line_by_line() -> None:
    """A sanity check that the property compares decisions, not only silence: an hour of
    spend over every limit, in lines of one event and envelopes, decided alike, with the state
    cap trimming along the way."""
    specs = [
        {"gap_s": 20, "cost": 1.6, "use_case": uc, "tenant": "acme", "trace": i % 4}
        | {"step": (i % 12) + 1, "outcome": i % 3 == 0}
        for i in range(150)
        for uc in ("bot", "api")
    ]
    lines = _lines(specs, [("one", 1), ("envelope", 3), ("again", 2), ("bad", 1)] * 40)
    expected = _record_by_record(lines)
    alerts, commands = expected[0], expected[1]
    assert len(alerts) >= 5 and commands
    assert _in_passes(lines, [1000]) == expected
    trimmed = _pipeline().run_records(lines, NOW, MemoryDedupStore(), {}, {}).trimmed
    assert trimmed.get("trace_ids")  # the cap trimmed, at the records it would one at a time
    result = replay_records(lines, _pipeline(), now=NOW, batch=64)
    assert (result.alerts, result.commands, result.dead_letters) == expected[:3]
    assert dict(result.outcomes) == expected[3]
