"""The pure notification pieces the notifier runs: owner routing, two-phase delivery, bounds."""

from __future__ import annotations

from datetime import timedelta

from spendfuse.rules.grouping import Dispatcher
from spendfuse.rules.routing import route
from spendfuse.schemas import Alert, Evidence, Severity
from tests.rules.support import ruleset
from tests.support.events import BASE_TIME as T0


def alert(uc: str = "bot", status: str = "firing", **labels: str) -> Alert:
    return Alert(
        alert_id=f"id-{uc}",
        fingerprint=f"r/acme/{uc}",
        rule="r",
        status=status,
        severity=Severity.MEDIUM,
        tenant_id="acme",
        use_case_id=uc,
        summary="s",
        evidence=Evidence(metric="m", value=1.0),
        fired_at=T0,
        labels=labels,
    )


def test_a_budget_owner_channel_or_receiver_gets_its_own_copy() -> None:
    rs = ruleset()
    assert [(t.receiver, t.channel) for t in route(alert(owner="#support"), rs)] == [
        ("finops", "#ai-finops"),
        ("owner:#support", "#support"),
    ]
    assert [t.receiver for t in route(alert(owner="oncall"), rs)] == ["finops", "oncall"]
    assert [t.receiver for t in route(alert(owner="#ai-finops"), rs)] == ["finops"]  # no dup
    assert [t.receiver for t in route(alert(owner="ops@acme.example"), rs)] == ["finops"]


def test_a_failed_delivery_keeps_the_group_and_backs_off() -> None:
    disp = Dispatcher(ruleset(), integrations=lambda _r: ["slack", "console"])
    disp.observe_alert(alert(), T0)
    notes = disp.pending(T0 + timedelta(seconds=30))
    assert sorted(n.integration for n in notes) == ["console", "slack"]
    slack = next(n for n in notes if n.integration == "slack")
    disp.mark_failed(slack.group_key, T0 + timedelta(seconds=90))
    assert disp.pending(T0 + timedelta(seconds=60), keys=[slack.group_key]) == []
    disp.observe_alert(alert(status="resolved"), T0 + timedelta(seconds=70))
    retry = disp.pending(T0 + timedelta(seconds=90), keys=[slack.group_key])
    assert retry[0].kind == "new" and retry[0].resolved == []  # never announced: not resolved
    assert [a.status for a in retry[0].firing] == []
    assert disp.mark_sent(retry[0], T0 + timedelta(seconds=90)) is True  # nothing left: gone


def test_groups_with_no_news_are_dropped_so_state_stays_bounded() -> None:
    disp = Dispatcher(ruleset())
    disp.observe_alert(alert("old"), T0)
    disp.observe_alert(alert("new"), T0 + timedelta(days=6))
    assert len(disp.drop_stale(T0 + timedelta(days=7, seconds=1), 7 * 86400)) == 1
    assert [g["labels"]["use_case_id"] for g in disp.state["groups"].values()] == ["new"]
