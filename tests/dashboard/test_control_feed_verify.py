"""The dashboard's control feed shows only records whose signature verifies, orders commands by
their publisher-assigned version, and holds a bounded number of commands in force."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from spendfuse.control.publish import encode_signed
from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.control.stamp import CommandSigner
from spendfuse.dashboard_state import DashboardConfig, DashboardState
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType

SIGNER = parse_signer(generate_ed25519_spec())
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def _cmd(uc: str, kind: str = "kill_switch") -> ControlCommand:
    return ControlCommand(
        command_id=f"{uc}-{kind}",
        kind=CommandKind(kind),
        target=Target(type=TargetType.USE_CASE, id=uc),
        issued_by="rule:t",
        reason="t",
        issued_at=T0,
        ttl_s=600,
    )


def _state(**cfg) -> DashboardState:
    return DashboardState(DashboardConfig(**cfg), Verifier([SIGNER.verify_key_spec()]))


def test_unsigned_forged_and_untrusted_records_never_show_as_in_force() -> None:
    state = _state()
    key, value, headers = encode_signed(_cmd("bot"), SIGNER)
    attacker = parse_signer(generate_ed25519_spec())
    assert state.add_control_record(key, value, None)[0] == "unsigned"
    assert state.add_control_record(key, value, attacker.sign(key, value))[0] == "unknown_key"
    assert state.add_control_record(key, value + b" ", headers[0][1])[0] == "forged"
    assert state.snapshot(T0)["commands_in_force"] == []
    assert state.snapshot(T0)["control_records_refused"] == {
        "unsigned": 1,
        "unknown_key": 1,
        "forged": 1,
    }
    outcome, shown = state.add_control_record(key, value, headers[0][1])
    assert outcome == "shown" and shown is not None
    assert [c["key"] for c in state.snapshot(T0)["commands_in_force"]] == ["use_case:bot"]


def test_without_a_verify_key_nothing_from_the_topic_is_shown() -> None:
    state = DashboardState()
    key, value, headers = encode_signed(_cmd("bot"), SIGNER)
    assert state.add_control_record(key, value, headers[0][1])[0] == "unverified"


def test_in_force_follows_versions_and_is_bounded() -> None:
    state = _state(max_in_force=3)
    stamper = CommandSigner(SIGNER, clock=lambda: T0.timestamp())
    restore = stamper.stamp(_cmd("bot", "restore"))
    kill = stamper.stamp(_cmd("bot"))  # newer version than the restore
    for c in (kill, restore):  # delivered out of order: the restore is older
        key, value, headers = stamper.sign(c)
        state.add_control_record(key, value, headers[0][1])
    assert [c["key"] for c in state.snapshot(T0)["commands_in_force"]] == ["use_case:bot"]
    for i in range(10):
        key, value, headers = stamper.sign(stamper.stamp(_cmd(f"u{i}")))
        state.add_control_record(key, value, headers[0][1])
    assert len(state.in_force) == 3
    assert len(state.snapshot(T0 + timedelta(seconds=1))["commands_in_force"]) == 3


def test_a_decision_shows_in_force_only_as_published_and_a_later_restore_lifts_it() -> None:
    state = _state()
    now = T0.timestamp()
    stamper = CommandSigner(SIGNER, clock=lambda: now)
    decided = _cmd("bot").model_copy(update={"issued_at": datetime(2099, 1, 1, tzinfo=UTC)})
    state.add_decided_command(decided)  # the ingest hook: event time 2099, not yet published
    assert state.snapshot(T0)["commands_in_force"] == []
    assert state.snapshot(T0)["commands_recent"][0]["issued_at"].startswith("2099")
    key, value, headers = stamper.sign(stamper.stamp(decided))
    state.add_control_record(key, value, headers[0][1])
    shown = state.snapshot(T0)
    assert [c["key"] for c in shown["commands_in_force"]] == ["use_case:bot"]
    assert shown["commands_in_force"][0]["expires_at"] == "2026-11-23T12:10:00.000Z"
    assert len(shown["commands_recent"]) == 1 and shown["commands_recent"][0]["version"]
    lift = stamper.stamp(_cmd("bot", "restore").model_copy(update={"command_id": "lift"}))
    key, value, headers = stamper.sign(lift)
    state.add_control_record(key, value, headers[0][1])
    assert state.snapshot(T0)["commands_in_force"] == []
