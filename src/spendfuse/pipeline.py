"""The ingest pipeline every path shares: decode → validate → dedup → price → decide.

Pure: no Kafka, no Faust. The Faust worker calls :meth:`Pipeline.run_record` once per input
record (one event, or an envelope of many); ``spendfuse replay`` calls
:meth:`Pipeline.run_records` on many lines at a time, which decides exactly what
:meth:`Pipeline.run_record` on each line in turn decides (every rule is evaluated at every event,
so decisions do not depend on how events are split into records). They differ only in where
dedup ids and per-use-case state live (Faust tables vs dicts) and where results go (topics vs
files). The same pass keeps each
use case's hourly rollups (and, when enabled, its outcome ledger) in its state, so replay and the
worker publish the same rollup rows; :meth:`Pipeline.run_outcome` applies outcome events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson

from spendfuse.dedup import DedupStore
from spendfuse.finops.outcomes import DEFAULT_RETENTION, OutcomeLedger
from spendfuse.finops.rollups import RollupBook, RollupPolicy
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.state_size import DEFAULT_MAX_STATE_BYTES, StateCap
from spendfuse.schemas.codec import (
    DEFAULT_MAX_EVENT_BYTES,
    decode_cost_event,
    decode_cost_events,
    make_dead_letter,
    member_bytes,
    member_oversized,
    record_oversized,
)
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.dead_letter import DeadLetter, SourcePosition
from spendfuse.schemas.envelope import (
    DEFAULT_MAX_RECORD_BYTES,
    SUPPORTED_ENVELOPE_VERSIONS,
    is_envelope,
)
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.outcome import OutcomeEvent, decode_outcome_event
from spendfuse.schemas.pricebook import PriceBook
from spendfuse.schemas.pricing import price_event
from spendfuse.schemas.rollup import CostRollup


class Outcome(StrEnum):
    """How an input record ended. Every record ends as exactly one of these."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    DEAD_LETTERED = "dead_lettered"


@dataclass(slots=True)
class Handled:
    outcome: Outcome
    event: CostEvent | None = None
    dead_letter: DeadLetter | None = None
    decisions: Decisions = field(default_factory=Decisions)
    rollups: list[CostRollup] = field(default_factory=list)  # rows to publish (full totals)


OFFSET_KEY = "__offset__"
"""In a use case's state: the input partition and offset of the last record it counted.

A record at or below it was counted already, whatever the dedup ids say: the worker writes each
use case's state before the dedup ids at a commit, so a kill between the two writes leaves the
state ahead of the ids, and this watermark keeps the re-read record from counting twice."""


def _past_watermark(
    events: list[CostEvent], states: MutableMapping[str, Any], partition: int, offset: int
) -> tuple[list[CostEvent], list[Handled]]:
    """Split off the events of use cases whose state already counted this record."""
    fresh: list[CostEvent] = []
    seen: list[Handled] = []
    marks: dict[str, Any] = {}
    for event in events:
        uc = event.use_case_id
        if uc not in marks:
            marks[uc] = (states.get(uc) or {}).get(OFFSET_KEY)
        mark = marks[uc]
        if mark is not None and mark[0] == partition and offset <= mark[1]:
            seen.append(Handled(Outcome.DUPLICATE, event))
        else:
            fresh.append(event)
    return fresh, seen


OUTCOMES_KEY = "__outcomes__"
"""In a use case's state: its outcome ledger (:class:`OutcomeLedger` data), created when the
first event carrying a ``business_outcome_id`` or the first outcome event arrives."""


@dataclass(slots=True)
class OutcomeResult:
    """What one outcome record led to: a dead letter, an outcome for another use case's
    partition (``foreign``), or an outcome counted (``applied``: False for a repeat, or one
    older than the outcome already known or than the ledger's retention)."""

    dead_letter: DeadLetter | None = None
    outcome: OutcomeEvent | None = None  # (not applied while outcome ledgers are off)
    applied: bool = False
    foreign: bool = False


@dataclass(slots=True)
class RecordResult:
    """Everything one input record led to in the use-case stage: the one result object replay,
    backtest and the worker all get from :meth:`Pipeline.run_record`."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    handled: list[Handled] = field(default_factory=list)
    foreign: dict[str, list[CostEvent]] = field(default_factory=dict)  # use case -> events
    trimmed: dict[str, int] = field(default_factory=dict)  # reason -> entries trimmed
    state_bytes: dict[str, int] = field(default_factory=dict)  # use case -> size, if measured

    @property
    def accepted(self) -> list[CostEvent]:
        """The accepted, priced events, in order: what the tenant stage takes."""
        return [h.event for h in self.handled if h.outcome is Outcome.ACCEPTED and h.event]

    @property
    def rollups(self) -> list[CostRollup]:
        """Hourly rollup rows this record closed or corrected (full totals; publish them under
        :func:`~spendfuse.schemas.rollup.rollup_key`)."""
        return [row for h in self.handled for row in h.rollups]

    @property
    def decisions(self) -> Decisions:
        out = Decisions()
        for h in self.handled:
            out.extend(h.decisions)
        return out

    def accepted_by_tenant(self) -> dict[str, list[CostEvent]]:
        out: dict[str, list[CostEvent]] = {}
        for event in self.accepted:
            out.setdefault(event.tenant_id, []).append(event)
        return out


@dataclass(slots=True)
class BatchResult:
    """What several records led to (:meth:`Pipeline.run_records`), both stages, ordered as
    handling the records one at a time orders them."""

    dead_letters: list[DeadLetter] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    decisions: Decisions = field(default_factory=Decisions)
    rollups: list[CostRollup] = field(default_factory=list)  # per key, the last one is current
    trimmed: dict[str, int] = field(default_factory=dict)


class Pipeline:
    """decode -> dead letter -> dedup -> price -> decide, for one record; then the tenant stage.

    :meth:`run_record` and :meth:`run_tenant` are the record driver: ``spendfuse replay``,
    ``spendfuse rules backtest`` and both stages of the worker call exactly these.
    """

    def __init__(
        self,
        engine: Engine,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        tenant_engine: TenantEngine | None = None,
        max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES,
        price_book: PriceBook | None = None,
        rollup_policy: RollupPolicy | None = None,
        outcome_retention: timedelta = DEFAULT_RETENTION,
        outcome_ledger: bool = False,
        max_state_bytes: int = DEFAULT_MAX_STATE_BYTES,
    ) -> None:
        self.outcome_ledger = outcome_ledger  # keep outcome ledgers in use case states
        self.outcome_retention = outcome_retention
        self.engine = engine
        self.rollups = RollupBook(rollup_policy)  # hourly rollups, in each use case's state
        self.state_cap = StateCap(  # per key, after each record
            max_state_bytes, extra_id_maps=((OUTCOMES_KEY, "entries", "outcome_ids"),)
        )
        self.price_book = price_book  # internal and negotiated prices, before list prices
        self.max_event_bytes = max_event_bytes
        self.max_record_bytes = max(max_record_bytes, max_event_bytes)
        self.tenant_engine = tenant_engine

    def run_record(
        self,
        raw: bytes,
        now: datetime,
        dedup: DedupStore,
        states: MutableMapping[str, Any],
        *,
        key: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        owns: Callable[[CostEvent], bool] | None = None,
    ) -> RecordResult:
        """One input record through the use-case stage.

        ``owns`` says which events this caller decides (the worker: those keyed to the record's
        partition); the others come back in ``foreign`` for the caller to route. ``now`` only
        stamps dead letters; decisions never see it.
        """
        out = RecordResult()
        mine: list[CostEvent] = []
        where = {"key": key, "topic": topic, "partition": partition, "offset": offset}
        for item in self.decode_record(raw, now, **where):
            if isinstance(item, DeadLetter):
                out.dead_letters.append(item)
            elif owns is None or owns(item):
                mine.append(item)
            else:
                out.foreign.setdefault(item.use_case_id, []).append(item)
        if mine:
            seen: list[Handled] = []
            if partition is not None and offset is not None:
                mine, seen = _past_watermark(mine, states, partition, offset)
            out.handled = (self.handle_batch(mine, dedup, states) if mine else []) + seen
            counted: dict[str, int] = {}
            for h in out.handled:
                if h.outcome is Outcome.ACCEPTED and h.event is not None:
                    uc = h.event.use_case_id
                    counted[uc] = counted.get(uc, 0) + 1
            for use_case, events in counted.items():
                state = states.get(use_case) or {}
                if partition is not None and offset is not None:
                    state[OFFSET_KEY] = [partition, offset]
                size = self.state_cap.after_record(state, events, out.trimmed)
                if size is not None:
                    out.state_bytes[use_case] = size
                states[use_case] = state
            if partition is not None and offset is not None:
                for use_case in {e.use_case_id for e in mine}.difference(counted):
                    state = states.get(use_case) or {}
                    state[OFFSET_KEY] = [partition, offset]
                    states[use_case] = state
        return out

    def run_records(
        self,
        raws: Sequence[bytes],
        now: datetime,
        dedup: DedupStore,
        states: MutableMapping[str, Any],
        tenant_states: MutableMapping[str, Any],
        *,
        first_offset: int = 0,
    ) -> BatchResult:
        """Several records (``spendfuse replay``'s lines) through both stages in one pass per
        use case and tenant, deciding exactly what :meth:`run_record` and :meth:`run_tenant`
        on each record in turn decide: every rule is evaluated at every event whatever the
        batching, events are dedup'd in order, a use case's outcome ledger is charged record by
        record, and a pass ends at each record after which the state cap would measure (so it
        trims at the same records). Dead letters carry their line's offset."""
        out = BatchResult()
        events: list[CostEvent] = []
        line_of: list[int] = []  # each event's record
        for i, items in enumerate(self._decode_records(raws, now, first_offset)):
            for item in items:
                if isinstance(item, DeadLetter):
                    out.dead_letters.append(item)
                else:
                    events.append(item)
                    line_of.append(i)
        by_use_case: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            ts_ms = to_epoch_ms(event.event_time)
            if dedup.seen(event.cost_event_id, ts_ms):
                out.duplicates += 1
                continue
            dedup.remember(event.cost_event_id, ts_ms)
            price_event(event, self.price_book)
            by_use_case.setdefault(event.use_case_id, []).append(i)
        out.accepted = len(events) - out.duplicates
        tenant_of = [event.tenant_id for event in events]
        # per record: (stage, the position that orders it in the record, decisions)
        per_line: dict[int, list[tuple[int, int, Decisions]]] = {}
        for use_case, indexes in by_use_case.items():
            state = states.get(use_case) or {}
            for chunk, lines in self._passes(indexes, line_of, state, tenant_of):
                group = [events[i] for i in chunk]
                cuts: list[tuple[int, int]] = []
                decided = self.engine.process_batch(group, state, cuts)
                out.rollups.extend(self.rollups.add(group, state))
                for line, a, b in lines:
                    self._outcome_costs(group[a:b], state)
                    if decided:  # decisions ride on the use case's last event of the record
                        part = _between(decided, cuts[a], cuts[b])
                        per_line.setdefault(line, []).append((0, chunk[b - 1], part))
                self.state_cap.after_record(state, len(chunk), out.trimmed)
            states[use_case] = state
        if self.tenant_engine is not None:
            by_tenant: dict[str, list[int]] = {}
            for i in sorted(i for indexes in by_use_case.values() for i in indexes):
                by_tenant.setdefault(events[i].tenant_id, []).append(i)
            for tenant, indexes in by_tenant.items():
                state = tenant_states.get(tenant) or {}
                for chunk, lines in self._passes(indexes, line_of, state):
                    cuts = []
                    group = [events[i] for i in chunk]
                    decided = self.tenant_engine.process_batch(group, state, cuts)
                    if decided:  # in the order of each tenant's first event in the record
                        for line, a, b in lines:
                            part = _between(decided, cuts[a], cuts[b])
                            per_line.setdefault(line, []).append((1, chunk[a], part))
                    tenant_states[tenant] = state
                    self.state_cap.after_record(state, len(chunk), out.trimmed)
                tenant_states[tenant] = state
        for line in sorted(per_line):
            for _stage, _at, part in sorted(per_line[line], key=lambda p: (p[0], p[1])):
                out.decisions.extend(part)
        return out

    def _decode_records(
        self, raws: Sequence[bytes], now: datetime, first_offset: int
    ) -> list[list[CostEvent | DeadLetter]]:
        """:meth:`decode_record` of each record, with the records of one event validated
        together as columns (what an envelope's members get; the same events and refusals)."""
        out: list[list[CostEvent | DeadLetter]] = []
        plain: list[int] = []
        objs: list[Any] = []
        limit = self.max_event_bytes
        for i, raw in enumerate(raws):
            head = raw[:64]
            if len(raw) <= limit and not (b'"events"' in head and head.lstrip()[:1] == b"{"):
                try:
                    objs.append(orjson.loads(raw))
                    plain.append(i)
                    out.append([])
                    continue
                except orjson.JSONDecodeError:
                    pass
            out.append(self.decode_record(raw, now, offset=first_offset + i))
        for i, result in zip(plain, decode_cost_events(objs), strict=True):
            if isinstance(result, EventRejectedError):
                out[i].append(make_dead_letter(raws[i], result, now, offset=first_offset + i))
            else:
                out[i].append(result)
        return out

    def _passes(
        self,
        indexes: list[int],
        line_of: list[int],
        state: dict[str, Any],
        tenant_of: list[str] | None = None,
    ) -> Iterator[tuple[list[int], list[tuple[int, int, int]]]]:
        """One key's events (indexes, in order) in passes that end where the state cap would
        measure; each pass with its records as ``(record, start, end)`` within the pass. Lazy:
        the caller counts a pass in the state before the next one is cut. With ``tenant_of``
        (each event's tenant) a pass also ends where the tenant changes, and a record of mixed
        tenants is a pass of its own (the engine reads one tenant's calendar per pass, as it
        does per record)."""
        n, start = len(indexes), 0
        while start < n:
            lines: list[tuple[int, int, int]] = []
            j = start
            tenant = tenant_of[indexes[start]] if tenant_of is not None else None
            while j < n:
                line, k = line_of[indexes[j]], j
                while k < n and line_of[indexes[k]] == line:
                    k += 1
                mixed = False
                if tenant_of is not None:
                    first = tenant_of[indexes[j]]
                    mixed = any(tenant_of[indexes[x]] != first for x in range(j + 1, k))
                    if lines and (mixed or first != tenant):
                        break
                lines.append((line, j - start, k - start))
                j = k
                if mixed or self.state_cap.measures_after(state, j - start):
                    break
            yield indexes[start:j], lines
            start = j

    def _ledger(self, state: dict[str, Any]) -> OutcomeLedger:
        data = state.get(OUTCOMES_KEY)
        if data is None:
            data = state[OUTCOMES_KEY] = OutcomeLedger(self.outcome_retention).data
        return OutcomeLedger.bind(data)

    def _outcome_costs(self, events: Sequence[CostEvent], state: dict[str, Any]) -> None:
        """Count accepted events in the use case's outcome ledger (once it has one)."""
        if not self.outcome_ledger:
            return
        if OUTCOMES_KEY not in state and not any(e.business_outcome_id for e in events):
            return
        ledger = self._ledger(state)
        for event in events:
            ledger.add_cost(event)
        _expire(ledger, max(e.event_time for e in events))

    def run_outcome(
        self,
        raw: bytes,
        now: datetime,
        states: MutableMapping[str, Any],
        *,
        key: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
        owns: Callable[[OutcomeEvent], bool] | None = None,
    ) -> OutcomeResult:
        """One outcome record into its use case's ledger; a bad one comes back as a dead letter
        (reason codes as for cost events), never an exception. ``owns`` as in
        :meth:`run_record`. Applying the same outcome event twice changes nothing, so a record
        read again after a restart is harmless."""
        try:
            outcome = decode_outcome_event(raw, self.max_event_bytes)
        except EventRejectedError as exc:
            where = {"key": key, "topic": topic, "partition": partition, "offset": offset}
            return OutcomeResult(dead_letter=make_dead_letter(raw, exc, now, **where))
        if owns is not None and not owns(outcome):
            return OutcomeResult(outcome=outcome, foreign=True)
        if not self.outcome_ledger:
            return OutcomeResult(outcome=outcome)
        state = states.get(outcome.use_case_id) or {}
        ledger = self._ledger(state)
        applied = ledger.add_outcome(outcome)
        _expire(ledger, outcome.event_time)
        states[outcome.use_case_id] = state
        return OutcomeResult(outcome=outcome, applied=applied)

    def run_tenant(
        self,
        events: Sequence[CostEvent],
        tenant_states: MutableMapping[str, Any],
        trimmed: dict[str, int] | None = None,
    ) -> Decisions:
        """The tenant stage for one record's accepted events (see :meth:`handle_tenant_batch`);
        then each tenant's state is held under the cap, as a use case's is (what was trimmed
        is added to ``trimmed``)."""
        decisions = self.handle_tenant_batch(events, tenant_states)
        if self.tenant_engine is None or not events:
            return decisions
        counts: dict[str, int] = {}
        for event in events:
            counts[event.tenant_id] = counts.get(event.tenant_id, 0) + 1
        for tenant, n in counts.items():
            state = tenant_states.get(tenant)
            if state is not None:
                self.state_cap.after_record(state, n, {} if trimmed is None else trimmed)
                tenant_states[tenant] = state
        return decisions

    def decode(
        self,
        raw: bytes,
        now: datetime,
        *,
        key: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> CostEvent | DeadLetter:
        """Decode one record; a refused record comes back as a dead letter, never an exception.

        ``now`` only stamps ``rejected_at`` on dead letters; decisions never see it.
        """
        try:
            return decode_cost_event(raw, self.max_event_bytes)
        except EventRejectedError as exc:
            return make_dead_letter(
                raw, exc, now, key=key, topic=topic, partition=partition, offset=offset
            )

    def decode_record(
        self,
        raw: bytes,
        now: datetime,
        *,
        key: bytes | None = None,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> list[CostEvent | DeadLetter]:
        """Decode one record, a single event or an envelope, into events and dead letters.

        A record over ``max_record_bytes`` is one dead letter, refused before it is parsed. A
        refused envelope member, or one over ``max_event_bytes``, becomes its own dead letter
        (its bytes, its ``index``); the other members go on. Never raises for bad input.
        """
        where = {"key": key, "topic": topic, "partition": partition, "offset": offset}
        if len(raw) > self.max_record_bytes:
            error = record_oversized(len(raw), self.max_record_bytes)
            return [make_dead_letter(raw, error, now, **where)]
        head = raw[:64]
        if len(raw) > self.max_event_bytes or (b'"events"' in head and head.lstrip()[:1] == b"{"):
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError:
                obj = None
            if is_envelope(obj):
                return self._envelope_members(raw, obj, now, where)
        return [self.decode(raw, now, **where)]

    def _envelope_members(
        self, raw: bytes, obj: dict[str, Any], now: datetime, where: dict[str, Any]
    ) -> list[CostEvent | DeadLetter]:
        """An envelope's members, validated together as columns; each refusal on its own."""
        version, members = obj.get("envelope_version"), obj.get("events")
        if (
            not isinstance(version, int)
            or isinstance(version, bool)
            or (version not in SUPPORTED_ENVELOPE_VERSIONS)
        ):
            supported = ", ".join(str(v) for v in sorted(SUPPORTED_ENVELOPE_VERSIONS))
            error = EventRejectedError(
                "unknown_envelope_version",
                f"envelope_version: {version!r} is not supported by this worker (supported: "
                f"{supported}); upgrade spendfuse or publish a supported version",
                field="envelope_version",
            )
            return [make_dead_letter(raw, error, now, **where)]
        if not isinstance(members, list):
            error = EventRejectedError(
                "validation", "events: must be a list of cost event objects", field="events"
            )
            return [make_dead_letter(raw, error, now, **where)]
        results: list[CostEvent | EventRejectedError] = []
        oversized = self._oversized_members(raw, members)
        if oversized:
            fitting = [m for i, m in enumerate(members) if i not in oversized]
            checked = iter(decode_cost_events(fitting))
            results = [oversized.get(i) or next(checked) for i in range(len(members))]
        else:
            results = decode_cost_events(members)
        out: list[CostEvent | DeadLetter] = []
        for index, result in enumerate(results):
            if isinstance(result, EventRejectedError):
                dead = make_dead_letter(member_bytes(members[index]), result, now, **where)
                dead.source = SourcePosition(
                    topic=where["topic"],
                    partition=where["partition"],
                    offset=where["offset"],
                    index=index,
                )
                out.append(dead)
            else:
                out.append(result)
        return out

    def _oversized_members(self, raw: bytes, members: list[Any]) -> dict[int, EventRejectedError]:
        """The members whose compact JSON is over ``max_event_bytes``, by index.

        A member's size is its bytes in the record; orjson does not give where a member starts
        and ends, so it is measured as the member's compact JSON (what its dead letter keeps),
        which is never longer except for numbers orjson writes longer (``1e15`` becomes
        ``1000000000000000.0``). No member of a record within the limit can be over it, so
        only records over ``max_event_bytes`` are measured.
        """
        limit = self.max_event_bytes
        if len(raw) <= limit:
            return {}
        return {
            index: member_oversized(index, size, limit)
            for index, size in enumerate(len(member_bytes(m)) for m in members)
            if size > limit
        }

    def handle_batch(
        self,
        events: Sequence[CostEvent],
        dedup: DedupStore,
        states: MutableMapping[str, Any],
    ) -> list[Handled]:
        """Dedup, price and decide one record's valid events; one :class:`Handled` per event.

        Events are grouped by use case (in order); each group is decided in one pass
        (:meth:`Engine.process_batch`), whose decisions ride on the group's last accepted
        event. One event is exactly :meth:`handle`.
        """
        if len(events) == 1:
            return [self.handle(events[0], dedup, states)]
        groups: dict[str, list[int]] = {}
        for i, event in enumerate(events):
            groups.setdefault(event.use_case_id, []).append(i)
        out: list[Handled] = [Handled(Outcome.DUPLICATE, e) for e in events]
        for use_case, indexes in groups.items():
            accepted: list[int] = []
            for i in indexes:
                event = events[i]
                ts_ms = to_epoch_ms(event.event_time)
                if dedup.seen(event.cost_event_id, ts_ms):
                    continue
                dedup.remember(event.cost_event_id, ts_ms)
                price_event(event, self.price_book)
                out[i].outcome = Outcome.ACCEPTED
                accepted.append(i)
            if not accepted:
                continue
            state = states.get(use_case) or {}
            group = [events[i] for i in accepted]
            last = out[accepted[-1]]
            last.decisions = self.engine.process_batch(group, state)
            last.rollups = self.rollups.add(group, state)
            self._outcome_costs(group, state)
            states[use_case] = state
        return out

    def handle(
        self,
        event: CostEvent,
        dedup: DedupStore,
        states: MutableMapping[str, Any],
    ) -> Handled:
        """Dedup, price and decide one valid event; ``states`` maps use case → plain-data state."""
        ts_ms = to_epoch_ms(event.event_time)
        if dedup.seen(event.cost_event_id, ts_ms):
            return Handled(Outcome.DUPLICATE, event)
        dedup.remember(event.cost_event_id, ts_ms)
        price_event(event, self.price_book)
        state = states.get(event.use_case_id) or {}
        decisions = self.engine.process(event, state)
        rollups = self.rollups.add((event,), state)
        self._outcome_costs((event,), state)
        states[event.use_case_id] = state
        return Handled(Outcome.ACCEPTED, event, decisions=decisions, rollups=rollups)

    def handle_tenant(self, event: CostEvent, tenant_states: MutableMapping[str, Any]) -> Decisions:
        """The tenant stage for one accepted (priced) event; ``tenant_states`` maps tenant →
        plain-data state. The worker runs it in a second agent keyed by tenant."""
        if self.tenant_engine is None:
            return Decisions()
        state = tenant_states.get(event.tenant_id) or {}
        decisions = self.tenant_engine.process(event, state)
        tenant_states[event.tenant_id] = state
        return decisions

    def handle_tenant_batch(
        self, events: Sequence[CostEvent], tenant_states: MutableMapping[str, Any]
    ) -> Decisions:
        """The tenant stage for one record's accepted events, one pass per tenant."""
        out = Decisions()
        if self.tenant_engine is None or not events:
            return out
        by_tenant: dict[str, list[CostEvent]] = {}
        for event in events:
            by_tenant.setdefault(event.tenant_id, []).append(event)
        for tenant, group in by_tenant.items():
            state = tenant_states.get(tenant) or {}
            out.extend(self.tenant_engine.process_batch(group, state))
            tenant_states[tenant] = state
        return out


def _between(decided: Decisions, start: tuple[int, int], end: tuple[int, int]) -> Decisions:
    """The decisions between two of the engine's cuts."""
    return Decisions(decided.alerts[start[0] : end[0]], decided.commands[start[1] : end[1]])


def _expire(ledger: OutcomeLedger, at: datetime) -> None:
    """Let the ledger forget what is older than its retention before the newest event time it
    has seen, on the hour (so the scan runs once an hour of event time, not per event)."""
    wm = max(ledger.data.get("wm_ms", 0), int(at.timestamp() * 1000))
    ledger.data["wm_ms"] = wm
    hour = datetime.fromtimestamp(wm // 3_600_000 * 3600, tz=UTC)
    ledger.expire(hour)
