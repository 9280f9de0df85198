"""The ingest pipeline every path shares: decode → validate → dedup → price → decide.

Pure: no Kafka, no Faust. The Faust worker and ``spendfuse replay`` both call
:meth:`Pipeline.decode` and :meth:`Pipeline.handle`; they differ only in where dedup ids and
per-use-case state live (Faust tables vs dicts) and where results go (topics vs files).
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from spendfuse.dedup import DedupStore
from spendfuse.rules.decisions import Decisions
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.schemas.codec import DEFAULT_MAX_EVENT_BYTES, decode_cost_event, make_dead_letter
from spendfuse.schemas.common import to_epoch_ms
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.dead_letter import DeadLetter
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.pricing import price_event


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


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        tenant_engine: TenantEngine | None = None,
    ) -> None:
        self.engine = engine
        self.max_event_bytes = max_event_bytes
        self.tenant_engine = tenant_engine

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
        price_event(event)
        state = states.get(event.use_case_id) or {}
        decisions = self.engine.process(event, state)
        states[event.use_case_id] = state
        return Handled(Outcome.ACCEPTED, event, decisions=decisions)

    def handle_tenant(self, event: CostEvent, tenant_states: MutableMapping[str, Any]) -> Decisions:
        """The tenant stage for one accepted (priced) event; ``tenant_states`` maps tenant →
        plain-data state. The worker runs it in a second agent keyed by tenant."""
        if self.tenant_engine is None:
            return Decisions()
        state = tenant_states.get(event.tenant_id) or {}
        decisions = self.tenant_engine.process(event, state)
        tenant_states[event.tenant_id] = state
        return decisions
