"""What on-call sees: dedup, grouping, repeat interval, silences, inhibition, routing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from spendfuse.rules.grouping import Dispatcher
from spendfuse.rules.routing import route
from spendfuse.rules.silences import Silence, expire, new_silence, silenced_by
from spendfuse.schemas import Alert, Evidence, Severity
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType
from tests.rules.support import ruleset
from tests.support.events import BASE_TIME

T0 = BASE_TIME


def alert(
    rule: str,
    uc: str = "bot",
    *,
    status: str = "firing",
    severity: str = "medium",
    action: str = "none",
    at_s: int = 0,
) -> Alert:
    fp = f"{rule}/acme/{uc}"
    return Alert(
        alert_id=f"id-{fp}",
        fingerprint=fp,
        rule=rule,
        status=status,
        severity=Severity(severity),
        tenant_id="acme",
        use_case_id=uc,
        summary=rule,
        evidence=Evidence(metric="m", value=1.0),
        fired_at=T0 + timedelta(seconds=at_s),
        labels={"action": action},
    )


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture
def disp() -> Dispatcher:
    return Dispatcher(ruleset())  # default routing: group_wait 30s, interval 5m, repeat 4h


def test_routes_by_severity_to_channels() -> None:
    rs = ruleset()
    assert [(t.receiver, t.channel) for t in route(alert("x", severity="high"), rs)] == [
        ("oncall", "#ai-oncall")
    ]
    low = route(alert("x", severity="low"), rs)[0]
    assert (low.receiver, low.channel, low.group_by) == (
        "finops",
        "#ai-finops",
        ("tenant_id", "use_case_id"),
    )
    assert (low.group_wait_s, low.group_interval_s, low.repeat_interval_s) == (30, 300, 14400)


def test_group_waits_then_sends_related_alerts_in_one_notification(disp: Dispatcher) -> None:
    assert disp.should_notify(alert("a"), at(0)) == []  # group_wait
    assert disp.should_notify(alert("b"), at(10)) == []
    assert disp.should_notify(alert("c", uc="other"), at(12)) == []
    notes = disp.flush(at(30))
    assert len(notes) == 1  # "other" still waits its own group_wait
    assert sorted(a.rule for a in notes[0].firing) == ["a", "b"]
    assert notes[0].group_labels == {"tenant_id": "acme", "use_case_id": "bot"}
    assert [a.rule for n in disp.flush(at(42)) for a in n.firing] == ["c"]


def test_dedup_a_repeated_firing_is_not_news(disp: Dispatcher) -> None:
    disp.should_notify(alert("a"), at(0))
    assert len(disp.flush(at(30))) == 1
    for s in (40, 100, 400):  # the same firing alert again, e.g. re-published after a restart
        assert disp.should_notify(alert("a"), at(s)) == []


def test_update_waits_group_interval_and_resolve_sent_once(disp: Dispatcher) -> None:
    disp.should_notify(alert("a"), at(0))
    disp.flush(at(30))
    assert disp.should_notify(alert("a", status="resolved"), at(60)) == []  # interval 5m
    notes = disp.flush(at(330))
    assert [(n.kind, [a.status for a in n.resolved]) for n in notes] == [("update", ["resolved"])]
    assert disp.flush(at(10_000)) == []
    assert disp.should_notify(alert("a", status="resolved"), at(10_001)) == []


def test_still_firing_repeats_after_repeat_interval(disp: Dispatcher) -> None:
    disp.should_notify(alert("a"), at(0))
    disp.flush(at(30))
    assert disp.flush(at(30 + 4 * 3600 - 1)) == []
    notes = disp.flush(at(30 + 4 * 3600))
    assert [n.kind for n in notes] == ["repeat"]


def test_silence_mutes_matching_alerts_until_it_expires(disp: Dispatcher) -> None:
    silence = new_silence(
        ['use_case_id="bot"', 'rule=~"a|b"'], timedelta(hours=1), "ana", "maintenance window", at(0)
    )
    disp.should_notify(alert("a"), at(0))
    disp.should_notify(alert("z"), at(1))
    notes = disp.flush(at(30), [silence])
    assert [a.rule for a in notes[0].firing] == ["z"]
    assert "ana: maintenance window" in notes[0].muted["a/acme/bot"]
    later = disp.flush(at(30 + 4 * 3600), [silence])  # silence over: a is back on repeat
    assert sorted(a.rule for a in later[0].firing) == ["a", "z"]


def test_silence_needs_expiry_author_comment_and_can_be_expired() -> None:
    with pytest.raises(ValueError, match="end after"):
        Silence(
            id="s", matchers=['a="b"'], starts_at=at(0), ends_at=at(0), created_by="x", comment="y"
        )
    with pytest.raises(ValueError):
        new_silence(['a="b"'], timedelta(hours=1), "", "why", at(0))
    with pytest.raises(ValueError, match="bad matcher"):
        new_silence(["nonsense"], timedelta(hours=1), "me", "why", at(0))
    s = new_silence(['a="b"'], timedelta(hours=1), "me", "why", at(0))
    assert silenced_by({"a": "b"}, [s], at(10)) == s
    ended = expire([s], s.id, at(20))
    assert silenced_by({"a": "b"}, ended, at(30)) is None


def test_kill_switch_alert_inhibits_lesser_alerts_of_the_same_use_case(disp: Dispatcher) -> None:
    disp.should_notify(alert("loop", severity="high", action="kill_switch"), at(0))
    disp.should_notify(alert("lesser"), at(1))
    disp.should_notify(alert("elsewhere", uc="other"), at(2))
    notes = {n.group_labels["use_case_id"] + n.receiver: n for n in disp.flush(at(32))}
    assert [a.rule for a in notes["botoncall"].firing] == ["loop"]
    assert "botfinops" not in notes  # its only alert is inhibited
    assert [a.rule for a in notes["otherfinops"].firing] == ["elsewhere"]
    disp.should_notify(alert("loop", severity="high", status="resolved"), at(40))
    again = disp.flush(at(32 + 4 * 3600))  # the source resolved: the lesser alert is back
    assert sorted(a.rule for n in again for a in n.firing) == ["elsewhere", "lesser"]


def test_active_enforced_command_inhibits_and_restore_lifts(disp: Dispatcher) -> None:
    def command(kind: CommandKind, mode: str = "enforce") -> ControlCommand:
        return ControlCommand(
            command_id=f"c-{kind}",
            kind=kind,
            mode=mode,
            target=Target(type=TargetType.USE_CASE, id="bot"),
            issued_by="operator:ana",
            reason="r",
            tenant_id="acme",
            use_case_id="bot",
            issued_at=at(0),
        )

    disp.observe_command(command(CommandKind.DEGRADE, mode="shadow"))
    disp.should_notify(alert("a"), at(0))
    assert [a.rule for n in disp.flush(at(30)) for a in n.firing] == ["a"]  # shadow: no effect
    disp.observe_command(command(CommandKind.DEGRADE))
    assert disp.flush(at(30 + 4 * 3600)) == []  # inhibited by the degrade
    disp.observe_command(command(CommandKind.RESTORE))
    assert [n.kind for n in disp.flush(at(30 + 8 * 3600))] == ["repeat"]
