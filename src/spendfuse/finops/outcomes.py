"""The outcome ledger: exact cost per successful outcome, and ROI, for one scope (a use case).

Cost events carry ``business_outcome_id``; outcome events (:mod:`spendfuse.schemas.outcome`) say
how each outcome turned out, possibly long after the spend. The ledger keeps, per outcome id,
the exact spend of its events and its latest status, and per UTC hour the spend of the scope and
the outcomes decided in that hour. Every id counts once (a dict, not a sketch), and the ledger
forgets by time: :meth:`OutcomeLedger.expire` drops outcomes and hours older than ``retention``
before the ``now`` it is given. So an outcome may arrive up to ``retention`` late, however many
ids there are in between; anything older than the last expiry is counted in ``late_dropped``.

Two costs per success are reported, because FinOps asks both:

- ``cost_per_success_usd``: all the scope's spend in the window over its successful outcomes
  (the unit-economics figure: failures and spend with no outcome id are part of what successes
  cost, e.g. $79,000 / 510,000 resolved cases = $0.155 per resolved case);
- ``attributed_cost_per_success_usd``: the spend carrying the successful outcomes' ids, over
  their number (what one success cost directly).

ROI is ``(value - spend) / spend`` when outcomes carry ``value_usd`` (50,000 of value for 20,000
of spend is 1.5, i.e. 150 %). Pure: no clock is read; times are event times or the ``now``
passed to :meth:`~OutcomeLedger.expire`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.outcome import OutcomeEvent, OutcomeStatus
from spendfuse.schemas.rollup import HOUR_MS

DEFAULT_RETENTION = timedelta(days=7)
_SUCC, _FAIL, _SUCC_COST, _FAIL_COST, _VALUE, _VALUED = range(6)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass(slots=True)
class OutcomeEntry:
    """What the ledger knows of one ``business_outcome_id``."""

    cost_usd: float = 0.0
    events: int = 0
    last_ms: int = 0  # latest event time of its spend or outcome: what expiry looks at
    status: OutcomeStatus | None = None
    status_ms: int = 0
    status_event_id: str = ""
    outcome_type: str = ""
    value_usd: float | None = None

    @property
    def roi(self) -> float | None:
        """``(value - cost) / cost`` of this outcome, when it has a value and a cost."""
        if self.value_usd is None or self.cost_usd <= 0:
            return None
        return (self.value_usd - self.cost_usd) / self.cost_usd


@dataclass(frozen=True, slots=True)
class OutcomeSummary:
    """Outcome economics over a window ``[start, end)`` of event time."""

    spend_usd: float
    events: int
    successes: int
    failures: int
    success_cost_usd: float
    failure_cost_usd: float
    value_usd: float
    valued_outcomes: int

    @property
    def success_rate(self) -> float | None:
        decided = self.successes + self.failures
        return self.successes / decided if decided else None

    @property
    def cost_per_success_usd(self) -> float | None:
        """All the window's spend over its successful outcomes (None with no success)."""
        return self.spend_usd / self.successes if self.successes else None

    @property
    def attributed_cost_per_success_usd(self) -> float | None:
        return self.success_cost_usd / self.successes if self.successes else None

    @property
    def net_value_usd(self) -> float | None:
        return self.value_usd - self.spend_usd if self.valued_outcomes else None

    @property
    def roi(self) -> float | None:
        """``(value - spend) / spend`` when some outcome carried ``value_usd``."""
        if not self.valued_outcomes or self.spend_usd <= 0:
            return None
        return (self.value_usd - self.spend_usd) / self.spend_usd


class OutcomeLedger:
    """Outcomes and spend of one scope (e.g. one use case), bounded by time."""

    def __init__(self, retention: timedelta = DEFAULT_RETENTION) -> None:
        if retention <= timedelta(0):
            raise ValueError(f"retention: must be positive, got {retention}")
        self.retention = retention
        self.entries: dict[str, OutcomeEntry] = {}
        self._spend: dict[int, list[float]] = {}  # hour ms -> [spend usd, events]
        self._decided: dict[tuple[int, str], list[float]] = {}  # (hour ms, type) -> sums
        self._horizon_ms = 0  # nothing older than this is kept (set by expire)
        self.late_dropped = 0

    def add_cost(self, event: CostEvent) -> None:
        """Count one priced cost event: in its hour's spend, and on its outcome id if any."""
        at_ms = _ms(event.event_time)
        if at_ms < self._horizon_ms:
            self.late_dropped += 1
            return
        cost = event.allocated_cost_usd or 0.0
        hour = self._spend.setdefault(at_ms // HOUR_MS * HOUR_MS, [0.0, 0])
        hour[0] += cost
        hour[1] += 1
        if not event.business_outcome_id:
            return
        entry = self.entries.get(event.business_outcome_id)
        if entry is None:
            entry = self.entries[event.business_outcome_id] = OutcomeEntry()
        entry.cost_usd += cost
        entry.events += 1
        entry.last_ms = max(entry.last_ms, at_ms)
        if entry.status is not None:  # spend arriving after its outcome still counts on it
            sums = self._decided[(entry.status_ms // HOUR_MS * HOUR_MS, entry.outcome_type)]
            sums[_SUCC_COST if entry.status.is_success else _FAIL_COST] += cost

    def add_outcome(self, outcome: OutcomeEvent) -> bool:
        """Record an outcome; the latest by event time wins. False when ignored (older than
        the outcome already known, or than the last expiry)."""
        at_ms = _ms(outcome.event_time)
        if at_ms < self._horizon_ms:
            self.late_dropped += 1
            return False
        entry = self.entries.get(outcome.business_outcome_id)
        if entry is None:
            entry = self.entries[outcome.business_outcome_id] = OutcomeEntry()
        elif entry.status is not None:
            if (at_ms, outcome.outcome_event_id) <= (entry.status_ms, entry.status_event_id):
                return False
            self._count(entry, -1)
        entry.status = outcome.status
        entry.status_ms = at_ms
        entry.status_event_id = outcome.outcome_event_id
        entry.outcome_type = outcome.outcome_type or ""
        entry.value_usd = outcome.value_usd
        entry.last_ms = max(entry.last_ms, at_ms)
        self._count(entry, +1)
        return True

    def _count(self, entry: OutcomeEntry, sign: int) -> None:
        assert entry.status is not None
        key = (entry.status_ms // HOUR_MS * HOUR_MS, entry.outcome_type)
        sums = self._decided.setdefault(key, [0, 0, 0.0, 0.0, 0.0, 0])
        ok = entry.status.is_success
        sums[_SUCC if ok else _FAIL] += sign
        sums[_SUCC_COST if ok else _FAIL_COST] += sign * entry.cost_usd
        if entry.value_usd is not None:
            sums[_VALUE] += sign * entry.value_usd
            sums[_VALUED] += sign

    def summary(
        self, start: datetime, end: datetime, outcome_type: str | None = None
    ) -> OutcomeSummary:
        """Spend of the window's hours and the outcomes decided in them (``outcome_type``: only
        outcomes of that type; spend is the scope's either way)."""
        lo, hi = _ms(start), _ms(end)
        spend = events = 0.0
        for hour, (usd, n) in self._spend.items():
            if lo <= hour < hi:
                spend += usd
                events += n
        totals = [0.0] * 6
        for (hour, kind), sums in self._decided.items():
            if lo <= hour < hi and (outcome_type is None or kind == outcome_type):
                for i, v in enumerate(sums):
                    totals[i] += v
        return OutcomeSummary(
            spend_usd=spend,
            events=int(events),
            successes=int(totals[_SUCC]),
            failures=int(totals[_FAIL]),
            success_cost_usd=totals[_SUCC_COST],
            failure_cost_usd=totals[_FAIL_COST],
            value_usd=totals[_VALUE],
            valued_outcomes=int(totals[_VALUED]),
        )

    def pending(self) -> int:
        """Outcome ids with spend and no outcome yet."""
        return sum(1 for e in self.entries.values() if e.status is None)

    def expire(self, now: datetime) -> int:
        """Forget outcomes and hours older than ``now - retention``; the number of ids dropped."""
        horizon = _ms(now - self.retention)
        if horizon <= self._horizon_ms:
            return 0
        self._horizon_ms = horizon
        old = [oid for oid, e in self.entries.items() if e.last_ms < horizon]
        for oid in old:
            del self.entries[oid]
        cut = horizon // HOUR_MS * HOUR_MS
        self._spend = {h: v for h, v in self._spend.items() if h >= cut}
        self._decided = {k: v for k, v in self._decided.items() if k[0] >= cut}
        return len(old)

    def to_state(self) -> dict[str, Any]:
        """Plain data (JSON-able) for a table."""
        return {
            "retention_s": self.retention.total_seconds(),
            "horizon_ms": self._horizon_ms,
            "late_dropped": self.late_dropped,
            "entries": {
                oid: [
                    e.cost_usd,
                    e.events,
                    e.last_ms,
                    e.status.value if e.status else None,
                    e.status_ms,
                    e.status_event_id,
                    e.outcome_type,
                    e.value_usd,
                ]
                for oid, e in self.entries.items()
            },
            "spend": [[h, *v] for h, v in self._spend.items()],
            "decided": [[h, kind, *v] for (h, kind), v in self._decided.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OutcomeLedger:
        ledger = cls(timedelta(seconds=state["retention_s"]))
        ledger._horizon_ms = state["horizon_ms"]
        ledger.late_dropped = state["late_dropped"]
        for oid, (cost, n, last, status, status_ms, eid, kind, value) in state["entries"].items():
            ledger.entries[oid] = OutcomeEntry(
                cost,
                n,
                last,
                OutcomeStatus(status) if status else None,
                status_ms,
                eid,
                kind,
                value,
            )
        ledger._spend = {h: [usd, n] for h, usd, n in state["spend"]}
        ledger._decided = {(h, kind): list(v) for h, kind, *v in state["decided"]}
        return ledger
