"""The outcome ledger: exact cost per successful outcome, late outcomes, ROI, bounded by time.

The unit-economics figures are the domain's worked examples: the customer-service copilot
worksheet (scaled by 1/1000: $79 of spend, 1,200 requests, 930 quality-passed answers, 690
accepted drafts, 510 resolved cases, $210 of labor value) and the ROI example ($50,000 of value
for $20,000 of cost is 150 %).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from spendfuse.finops.outcomes import OutcomeLedger
from spendfuse.schemas.codec import parse_cost_event_obj
from spendfuse.schemas.cost_event import CostEvent
from spendfuse.schemas.errors import EventRejectedError
from spendfuse.schemas.outcome import OutcomeEvent, OutcomeStatus, decode_outcome_event

T0 = datetime(2026, 6, 1, tzinfo=UTC)
DAY = timedelta(days=1)


def cost(usd: float, outcome: str | None = None, at: datetime = T0, n: int = 0) -> CostEvent:
    from tests.support.events import make_event

    return parse_cost_event_obj(
        make_event(
            "customer_service_copilot",
            cost=usd,
            at=at,
            business_outcome_id=outcome,
            cost_event_id=f"ce-{outcome}-{n}-{at.timestamp()}",
        )
    )


def outcome(
    oid: str,
    status: str,
    at: datetime = T0,
    kind: str | None = None,
    value: float | None = None,
    eid: str | None = None,
) -> OutcomeEvent:
    return OutcomeEvent.model_validate(
        {
            "schema_version": 1,
            "outcome_event_id": eid or f"oe-{oid}-{at.timestamp()}",
            "event_time": at.isoformat(),
            "tenant_id": "retail_banking_us",
            "use_case_id": "customer_service_copilot",
            "business_outcome_id": oid,
            "status": status,
            "outcome_type": kind,
            "value_usd": value,
        }
    )


def test_worksheet_unit_economics() -> None:
    ledger = OutcomeLedger(retention=timedelta(days=31))
    requests = 1200
    items = {
        "retrieval": 7.8,
        "judge": 5.6,
        "tool_call": 3.9,
        "human_review": 18.0,
        "observability": 2.2,
    }
    for i in range(requests):  # model cost $41.5 over the month's requests
        ledger.add_cost(cost(41.5 / requests, f"req-{i}", T0 + i * timedelta(minutes=30)))
    for j, usd in enumerate(items.values()):
        ledger.add_cost(cost(usd, None, T0 + j * DAY, n=j))
    at = T0 + 20 * DAY
    for i in range(930):
        ledger.add_outcome(outcome(f"answer-{i}", "success", at, "quality_passed_answer"))
    for i in range(690):
        ledger.add_outcome(outcome(f"draft-{i}", "success", at, "accepted_draft"))
    for i in range(510):
        ledger.add_outcome(outcome(f"case-{i}", "resolved", at, "resolved_case", value=210.0 / 510))
    month = (T0, T0 + 30 * DAY)
    total = ledger.summary(*month)
    assert total.spend_usd == pytest.approx(79.0)
    assert round(total.spend_usd / requests, 3) == 0.066
    answers = ledger.summary(*month, outcome_type="quality_passed_answer")
    drafts = ledger.summary(*month, outcome_type="accepted_draft")
    cases = ledger.summary(*month, outcome_type="resolved_case")
    assert round(answers.cost_per_success_usd or 0, 3) == 0.085
    assert round(drafts.cost_per_success_usd or 0, 3) == 0.114
    assert round(cases.cost_per_success_usd or 0, 3) == 0.155
    assert cases.net_value_usd == pytest.approx(131.0)
    assert cases.successes == 510 and cases.failures == 0


def test_roi_worked_example() -> None:
    ledger = OutcomeLedger()
    ledger.add_cost(cost(20_000.0, "project-1"))
    ledger.add_outcome(outcome("project-1", "success", T0 + DAY, value=50_000.0))
    summary = ledger.summary(T0, T0 + 2 * DAY)
    assert summary.roi == pytest.approx(1.5)  # (50,000 - 20,000) / 20,000 = 150 %
    assert ledger.entry("project-1").roi == pytest.approx(1.5)


def test_attributed_cost_is_exact_and_late_outcomes_count() -> None:
    ledger = OutcomeLedger(retention=timedelta(days=7))
    ledger.add_cost(cost(0.30, "case-1", T0))
    ledger.add_cost(cost(0.20, "case-1", T0 + timedelta(hours=1), n=1))
    ledger.add_cost(cost(0.50, "case-2", T0))
    ledger.add_cost(cost(0.10, None, T0))  # spend with no outcome id
    assert ledger.pending() == 2
    # case-1 resolves three days later, case-2 fails
    ledger.add_outcome(outcome("case-1", "resolved", T0 + 3 * DAY))
    ledger.add_outcome(outcome("case-2", "failure", T0 + 3 * DAY))
    # spend arriving after the outcome still counts on it
    ledger.add_cost(cost(0.05, "case-1", T0 + 3 * DAY + timedelta(hours=1), n=2))
    s = ledger.summary(T0, T0 + 7 * DAY)
    assert (s.successes, s.failures) == (1, 1)
    assert s.success_cost_usd == pytest.approx(0.55)
    assert s.failure_cost_usd == pytest.approx(0.50)
    assert s.attributed_cost_per_success_usd == pytest.approx(0.55)
    assert s.cost_per_success_usd == pytest.approx(1.15)  # all the spend over one success
    assert s.success_rate == 0.5
    assert ledger.pending() == 0


def test_latest_outcome_wins_and_replays_are_idempotent() -> None:
    ledger = OutcomeLedger()
    ledger.add_cost(cost(1.0, "case-9"))
    first = outcome("case-9", "failure", T0 + DAY)
    assert ledger.add_outcome(first)
    assert not ledger.add_outcome(first)  # the same outcome event again: no change
    assert ledger.add_outcome(outcome("case-9", "resolved", T0 + 2 * DAY))  # reopened, resolved
    assert not ledger.add_outcome(outcome("case-9", "failure", T0 + DAY + timedelta(hours=1)))
    s = ledger.summary(T0, T0 + 7 * DAY)
    assert (s.successes, s.failures) == (1, 0)
    assert s.success_cost_usd == pytest.approx(1.0) and s.failure_cost_usd == pytest.approx(0)


def test_bounded_by_time_not_by_count() -> None:
    ledger = OutcomeLedger(retention=timedelta(days=2))
    for i in range(5000):  # many ids within the window: all kept, each counted once
        ledger.add_cost(cost(0.01, f"case-{i}", T0 + i * timedelta(seconds=10)))
    assert len(ledger.entries) == 5000
    assert ledger.expire(T0 + DAY) == 0
    ledger.add_outcome(outcome("case-0", "resolved", T0 + DAY))  # a day late: still exact
    assert ledger.entry("case-0").status is OutcomeStatus.RESOLVED
    ledger.add_cost(cost(0.01, "case-4999", T0 + 2 * DAY, n=1))  # still active two days on
    assert ledger.expire(T0 + 3 * DAY + timedelta(hours=6)) == 4999  # idle over 2 days: gone
    assert list(ledger.entries) == ["case-4999"]
    # an outcome older than what was forgotten is counted as dropped, not guessed at
    assert not ledger.add_outcome(outcome("case-1", "resolved", T0 + timedelta(hours=1)))
    assert ledger.late_dropped == 1


def test_state_round_trips_through_json() -> None:
    ledger = OutcomeLedger()
    ledger.add_cost(cost(0.4, "a"))
    ledger.add_cost(cost(0.6, "b"))
    ledger.add_outcome(outcome("a", "success", T0 + DAY, kind="accepted_action", value=3.0))
    restored = OutcomeLedger.from_state(orjson.loads(orjson.dumps(ledger.to_state())))
    window = (T0, T0 + 2 * DAY)
    assert restored.summary(*window) == ledger.summary(*window)
    assert restored.entries == ledger.entries
    restored.add_outcome(outcome("b", "failure", T0 + DAY))
    assert restored.summary(*window).failure_cost_usd == pytest.approx(0.6)


def test_outcome_event_decoding() -> None:
    raw = orjson.dumps(
        {
            "schema_version": 1,
            "outcome_event_id": "oe-1",
            "event_time": "2026-06-29T16:20:00Z",
            "tenant_id": "t",
            "use_case_id": "u",
            "business_outcome_id": "case_849201",
            "status": "resolved",
            "outcome_type": "resolved_case",
            "value_usd": 4.1,
        }
    )
    event = decode_outcome_event(raw)
    assert event.status.is_success and event.value_usd == 4.1
    with pytest.raises(EventRejectedError) as info:
        decode_outcome_event(raw.replace(b'"resolved",', b'"maybe",'))
    assert info.value.field == "status"
    with pytest.raises(EventRejectedError, match="value_usd"):
        decode_outcome_event(raw.replace(b"4.1", b"-4.1"))
