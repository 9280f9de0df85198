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

The ledger's data is plain JSON-able data (:attr:`OutcomeLedger.data`) that it reads and writes
in place, so the worker keeps it inside a use case's state (:meth:`OutcomeLedger.bind`) and
writes it with the state at commit, with no conversion per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.outcome import OutcomeEvent, OutcomeStatus
from spendfuse.schemas.rollup import HOUR_MS

DEFAULT_RETENTION = timedelta(days=7)
_SUCC, _FAIL, _SUCC_COST, _FAIL_COST, _VALUE, _VALUED = range(6)
# an entry in data["entries"]: [cost, events, last_ms, status, status_ms, event id, type, value]
_E_COST, _E_EVENTS, _E_LAST, _E_STATUS, _E_STATUS_MS, _E_ID, _E_TYPE, _E_VALUE = range(8)


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
        self.data: dict[str, Any] = {
            "retention_s": retention.total_seconds(),
            "horizon_ms": 0,  # nothing older than this is kept (set by expire)
            "late_dropped": 0,
            "entries": {},  # outcome id -> entry (see _E_*)
            "spend": {},  # "hour ms" -> [spend usd, events]
            "decided": {},  # "hour ms|type" -> [successes, failures, their costs, value, valued]
        }

    @classmethod
    def bind(cls, data: dict[str, Any]) -> OutcomeLedger:
        """A ledger over existing plain data (e.g. held in a use case's state), used in place."""
        ledger = cls.__new__(cls)
        ledger.data = data
        return ledger

    @property
    def retention(self) -> timedelta:
        return timedelta(seconds=self.data["retention_s"])

    @property
    def entries(self) -> dict[str, list[Any]]:
        """Outcome id -> its plain entry (:meth:`entry` gives the readable form)."""
        return self.data["entries"]

    @property
    def late_dropped(self) -> int:
        return int(self.data["late_dropped"])

    def entry(self, outcome_id: str) -> OutcomeEntry | None:
        raw = self.data["entries"].get(outcome_id)
        if raw is None:
            return None
        status = OutcomeStatus(raw[_E_STATUS]) if raw[_E_STATUS] else None
        return OutcomeEntry(
            raw[_E_COST],
            raw[_E_EVENTS],
            raw[_E_LAST],
            status,
            raw[_E_STATUS_MS],
            raw[_E_ID],
            raw[_E_TYPE],
            raw[_E_VALUE],
        )

    def _late(self) -> None:
        self.data["late_dropped"] += 1

    def add_cost(self, event: CostEvent) -> None:
        """Count one priced cost event: in its hour's spend, and on its outcome id if any."""
        at_ms = _ms(event.event_time)
        if at_ms < self.data["horizon_ms"]:
            self._late()
            return
        cost = event.allocated_cost_usd or 0.0
        hour = self.data["spend"].setdefault(str(at_ms // HOUR_MS * HOUR_MS), [0.0, 0])
        hour[0] += cost
        hour[1] += 1
        if not event.business_outcome_id:
            return
        entries = self.data["entries"]
        entry = entries.get(event.business_outcome_id)
        if entry is None:
            entry = entries[event.business_outcome_id] = [0.0, 0, 0, None, 0, "", "", None]
        entry[_E_COST] += cost
        entry[_E_EVENTS] += 1
        entry[_E_LAST] = max(entry[_E_LAST], at_ms)
        if entry[_E_STATUS] is not None:  # spend arriving after its outcome still counts on it
            sums = self.data["decided"][_decided_key(entry)]
            ok = OutcomeStatus(entry[_E_STATUS]).is_success
            sums[_SUCC_COST if ok else _FAIL_COST] += cost

    def add_outcome(self, outcome: OutcomeEvent) -> bool:
        """Record an outcome; the latest by event time wins. False when ignored (older than
        the outcome already known, or than the last expiry). The same outcome event twice
        changes nothing, so a re-read record is harmless."""
        at_ms = _ms(outcome.event_time)
        if at_ms < self.data["horizon_ms"]:
            self._late()
            return False
        entries = self.data["entries"]
        entry = entries.get(outcome.business_outcome_id)
        if entry is None:
            entry = entries[outcome.business_outcome_id] = [0.0, 0, 0, None, 0, "", "", None]
        elif entry[_E_STATUS] is not None:
            if (at_ms, outcome.outcome_event_id) <= (entry[_E_STATUS_MS], entry[_E_ID]):
                return False
            self._count(entry, -1)
        entry[_E_STATUS] = outcome.status.value
        entry[_E_STATUS_MS] = at_ms
        entry[_E_ID] = outcome.outcome_event_id
        entry[_E_TYPE] = outcome.outcome_type or ""
        entry[_E_VALUE] = outcome.value_usd
        entry[_E_LAST] = max(entry[_E_LAST], at_ms)
        self._count(entry, +1)
        return True

    def _count(self, entry: list[Any], sign: int) -> None:
        sums = self.data["decided"].setdefault(_decided_key(entry), [0, 0, 0.0, 0.0, 0.0, 0])
        ok = OutcomeStatus(entry[_E_STATUS]).is_success
        sums[_SUCC if ok else _FAIL] += sign
        sums[_SUCC_COST if ok else _FAIL_COST] += sign * entry[_E_COST]
        if entry[_E_VALUE] is not None:
            sums[_VALUE] += sign * entry[_E_VALUE]
            sums[_VALUED] += sign

    def summary(
        self, start: datetime, end: datetime, outcome_type: str | None = None
    ) -> OutcomeSummary:
        """Spend of the window's hours and the outcomes decided in them (``outcome_type``: only
        outcomes of that type; spend is the scope's either way)."""
        lo, hi = _ms(start), _ms(end)
        spend = events = 0.0
        for hour, (usd, n) in self.data["spend"].items():
            if lo <= int(hour) < hi:
                spend += usd
                events += n
        totals = [0.0] * 6
        for key, sums in self.data["decided"].items():
            hour, kind = key.split("|", 1)
            if lo <= int(hour) < hi and (outcome_type is None or kind == outcome_type):
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
        return sum(1 for e in self.data["entries"].values() if e[_E_STATUS] is None)

    def expire(self, now: datetime) -> int:
        """Forget outcomes and hours older than ``now - retention``; the number of ids dropped."""
        horizon = _ms(now - self.retention)
        if horizon <= self.data["horizon_ms"]:
            return 0
        self.data["horizon_ms"] = horizon
        entries = self.data["entries"]
        old = [oid for oid, e in entries.items() if e[_E_LAST] < horizon]
        for oid in old:
            del entries[oid]
        cut = horizon // HOUR_MS * HOUR_MS
        self.data["spend"] = {h: v for h, v in self.data["spend"].items() if int(h) >= cut}
        self.data["decided"] = {
            k: v for k, v in self.data["decided"].items() if int(k.split("|", 1)[0]) >= cut
        }
        return len(old)

    def to_state(self) -> dict[str, Any]:
        """Plain data (JSON-able) for a table: the ledger's own data."""
        return self.data

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> OutcomeLedger:
        return cls.bind(state)


def _decided_key(entry: list[Any]) -> str:
    return f"{entry[_E_STATUS_MS] // HOUR_MS * HOUR_MS}|{entry[_E_TYPE]}"


def summary_view(summary: OutcomeSummary, start: datetime, end: datetime) -> dict[str, Any]:
    """An :class:`OutcomeSummary` as JSON-able data (what the dashboard shows)."""

    def r(value: float | None, digits: int = 6) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "start": start.isoformat().replace("+00:00", "Z"),
        "end": end.isoformat().replace("+00:00", "Z"),
        "spend_usd": r(summary.spend_usd),
        "events": summary.events,
        "successes": summary.successes,
        "failures": summary.failures,
        "success_rate": r(summary.success_rate, 4),
        "cost_per_success_usd": r(summary.cost_per_success_usd),
        "attributed_cost_per_success_usd": r(summary.attributed_cost_per_success_usd),
        "value_usd": r(summary.value_usd) if summary.valued_outcomes else None,
        "roi": r(summary.roi, 4),
    }


def ledger_view(data: dict[str, Any]) -> dict[str, Any]:
    """A use case's outcome economics: over the ledger's retention window and over the current
    UTC day, both ending with the hour of the newest event time the ledger has seen."""
    ledger = OutcomeLedger.bind(data)
    wm_ms = int(data.get("wm_ms", 0))
    end = datetime.fromtimestamp((wm_ms // HOUR_MS + 1) * HOUR_MS / 1000, tz=UTC)
    start = end - ledger.retention
    day_start = datetime.fromtimestamp(wm_ms // 86_400_000 * 86_400, tz=UTC)
    return {
        "window": summary_view(ledger.summary(start, end), start, end),
        "day": summary_view(ledger.summary(day_start, end), day_start, end),
        "pending_outcomes": ledger.pending(),
        "late_dropped": ledger.late_dropped,
    }
