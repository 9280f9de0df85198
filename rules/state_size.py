"""A size cap on one key's state, enforced by trimming it in event-time order.

A use case's state is bounded by time (windows are rings, ids expire in event time), but not by
rate: the exact per-trace map (``tr``) and the outcome ids (``oc``) hold every id seen within
their retention, so a use case with tens of thousands of concurrent traces, or an outcome id
per request at a high rate, grows its state past what a changelog record can carry (1 MB), and
every commit touching it would fail. This module caps it.

The cap is pure logic, applied by :class:`~spendfuse.pipeline.Pipeline` after each record at a
point fixed by the events alone (never at a commit, never by a clock), so ``spendfuse replay``
and the worker trim the same entries at the same event and reach the same decisions:

* the size is the state's JSON as persisted (:func:`persisted`: derivable caches left out);
* it is measured after a key's first record and then once the events since the last
  measurement could have brought it to the cap at :data:`GROWTH_PER_EVENT` bytes each (so a
  small state is measured rarely, one near the cap often); the count is kept in the state
  itself (:data:`SIZE_KEY`);
* over the cap, it is trimmed to half the cap: the entries of the id maps (outcome ids and
  open traces, in every aggregate of the key, and the ids of maps kept beside the aggregates,
  such as the outcome ledger's) whose last event is oldest go first (ties broken
  by aggregate, map and id, so the order is total), then all but the latest evidence id. What is
  trimmed only makes a later measurement approximate: a trimmed trace that sends again starts a
  new per-trace cost, a trimmed outcome id seen again counts as new.

Each trim is counted per reason (:data:`TRIM_REASONS`); a state still over the cap once nothing
is left to trim (too many rule groups, say) is counted as ``over_cap`` and kept whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson

from spendfuse.rules.engine import AGGREGATES_KEY, GROUPS_KEY

DEFAULT_MAX_STATE_BYTES = 256 * 1024
"""The cap on one use case's or tenant's state as persisted (``SPENDFUSE_STATE_MAX_BYTES``):
about twice the largest state of the simulated fleet (``benchmarks/state_memory.py``), a
quarter of a changelog record's 1 MB."""
SIZE_KEY = "__size__"
"""In a key's state: ``[bytes at the last measurement, events since]``."""
GROWTH_PER_EVENT = 2_048
"""The most one event is assumed to add to a state (a new trace in a few aggregates, a new
group): the measurement is due once the events since the last one could have reached the cap."""
DERIVED = ("bl",)
"""Caches an aggregate can rebuild from its own data (``bl``: past hours' sums for baselines);
never persisted, never counted in the size."""
TRIM_REASONS = ("outcome_ids", "trace_ids", "evidence", "over_cap")
"""The values of the ``reason`` label of ``spendfuse_state_trimmed_total``."""
_ID_MAPS = (("oc", "outcome_ids"), ("tr", "trace_ids"))


def aggregates(state: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every aggregate of a key's state, in a fixed order: the shared one, then each rule's
    groups (by scope signature and group, in insertion order)."""
    shared = state.get(AGGREGATES_KEY)
    if isinstance(shared, dict):
        yield shared
    for groups in (state.get(GROUPS_KEY) or {}).values():
        for agg in groups.values():
            if isinstance(agg, dict):
                yield agg


def persisted(state: Any) -> Any:
    """The state as it is stored: without the derivable caches (:data:`DERIVED`). Copies only
    the dicts on the way to a cache; the live state keeps its caches."""
    if not isinstance(state, dict):
        return state
    if not any(name in agg for agg in aggregates(state) for name in DERIVED):
        return state
    out = dict(state)
    shared = out.get(AGGREGATES_KEY)
    if isinstance(shared, dict):
        out[AGGREGATES_KEY] = _without_derived(shared)
    groups = out.get(GROUPS_KEY)
    if groups:
        out[GROUPS_KEY] = {
            sig: {g: _without_derived(a) if isinstance(a, dict) else a for g, a in by.items()}
            for sig, by in groups.items()
        }
    return out


def _without_derived(agg: dict[str, Any]) -> dict[str, Any]:
    if not any(name in agg for name in DERIVED):
        return agg
    return {k: v for k, v in agg.items() if k not in DERIVED}


def state_bytes(state: dict[str, Any]) -> int:
    """The size of the state as persisted (its JSON)."""
    return len(orjson.dumps(persisted(state)))


class StateCap:
    """Keeps each key's state under ``max_bytes`` (see the module's docstring)."""

    def __init__(
        self, max_bytes: int, extra_id_maps: tuple[tuple[str, str, str], ...] = ()
    ) -> None:
        """``extra_id_maps``: id maps kept outside the aggregates, as ``(state key, map key,
        reason)``, trimmed with the aggregates' own (entries ``[..., ..., last_ms, ...]``): the
        outcome ledger's ids, for instance, which the pipeline keeps in a use case's state."""
        self.max_bytes = max_bytes
        self.target = max_bytes // 2
        self.extra_id_maps = extra_id_maps

    def after_record(
        self, state: dict[str, Any], events: int, trimmed: dict[str, int]
    ) -> int | None:
        """Called once per key and record, after the record's ``events`` counted. Returns the
        size if it was measured (adding what was trimmed to ``trimmed``), else None."""
        if not self.measures_after(state, events):
            last, since = state[SIZE_KEY]
            state[SIZE_KEY] = [last, since + events]
            return None
        size = state_bytes(state)
        if size > self.max_bytes:
            size = self.trim(state, size, trimmed)
        state[SIZE_KEY] = [size, 0]
        return size

    def measures_after(self, state: dict[str, Any], events: int) -> bool:
        """Whether :meth:`after_record` with ``events`` more counted would measure the state
        (and trim it if over the cap): a caller handling several records in one pass ends its
        pass there, so the cap acts at the same records as record by record."""
        mark = state.get(SIZE_KEY)
        if not mark:
            return True
        last, since = mark
        return last + (since + events) * GROWTH_PER_EVENT >= self.max_bytes

    def trim(self, state: dict[str, Any], size: int, trimmed: dict[str, int]) -> int:
        """Trim to half the cap, oldest ids first, then evidence; returns the new size."""
        aggs = list(aggregates(state))
        maps: list[tuple[dict[str, Any], str]] = []  # (id map, reason), in a fixed order
        for agg in aggs:
            maps.extend((agg[part], reason) for part, reason in _ID_MAPS if agg.get(part))
        for key, part, reason in self.extra_id_maps:
            holder = state.get(key)
            if isinstance(holder, dict) and isinstance(holder.get(part), dict):
                maps.append((holder[part], reason))
        entries: list[tuple[float, int, str]] = []
        for index, (ids, _reason) in enumerate(maps):
            entries.extend((_last_ms(entry), index, key) for key, entry in ids.items())
        entries.sort()
        excess = size - self.target
        for _ts, index, key in entries:
            if excess <= 0:
                break
            ids, reason = maps[index]
            entry = ids.pop(key)
            excess -= len(orjson.dumps({key: entry})) - 1  # its JSON and a comma
            trimmed[reason] = trimmed.get(reason, 0) + 1
        size = state_bytes(state)
        if size > self.target:
            for agg in aggs:
                evidence = agg.get("ev")
                if evidence and len(evidence) > 1:
                    trimmed["evidence"] = trimmed.get("evidence", 0) + len(evidence) - 1
                    del evidence[:-1]
            size = state_bytes(state)
        if size > self.max_bytes:
            trimmed["over_cap"] = trimmed.get("over_cap", 0) + 1
        return size


def _last_ms(entry: Any) -> float:
    """An id entry's last event time (its third field), 0 when it has none."""
    if isinstance(entry, list | tuple) and len(entry) > 2 and isinstance(entry[2], int | float):
        return entry[2]
    return 0
