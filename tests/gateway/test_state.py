"""The gateway's control state, record by record: acceptance rules, specificity, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.control.publish import encode_signed
from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.gateway.state import ControlState
from spendfuse.schemas.command import CommandKind, ControlCommand, DegradeParams, Target
from spendfuse.schemas.common import DegradationLevel

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
NOW = (T0 + timedelta(minutes=1)).timestamp()
SIGNER = parse_signer(generate_ed25519_spec())


def command(
    target: str,
    kind: str = "kill_switch",
    *,
    at: datetime = T0,
    ttl_s: int | None = 3600,
    cid: str | None = None,
    **kw,
) -> ControlCommand:
    ttype, tid = target.split(":", 1)
    return ControlCommand(
        command_id=cid or f"{target}-{kind}-{at.timestamp()}",
        kind=CommandKind(kind),
        target=Target(type=ttype, id=tid),
        level=DegradationLevel.L1 if kind == "degrade" else None,
        params=DegradeParams(cache_first=True, model_tier="small")
        if kind == "degrade"
        else DegradeParams(),
        issued_by="operator:alice",
        reason="test",
        issued_at=at,
        expires_at=at + timedelta(seconds=ttl_s) if ttl_s else None,
        **kw,
    )


@pytest.fixture
def state() -> ControlState:
    return ControlState(Verifier([SIGNER.verify_key_spec()]), default_risk_tier="low")


def feed(state: ControlState, cmd: ControlCommand, now: float = NOW, signer=SIGNER) -> str:
    key, value, headers = encode_signed(cmd, signer)
    return state.apply_record(key, value, headers[0][1], now)


def test_kill_denies_degrade_degrades_restore_lifts(state: ControlState) -> None:
    assert feed(state, command("use_case:bot")) == "applied"
    d = state.decide({"use_case_id": "bot", "tenant_id": "acme"}, NOW)
    assert d.action == "deny" and not d.allowed and "kill switch on use_case:bot" in d.reason
    assert state.decide({"use_case_id": "other"}, NOW).action == "allow"
    later = T0 + timedelta(seconds=10)
    assert feed(state, command("use_case:bot", "degrade", at=later)) == "applied"
    d = state.decide({"use_case_id": "bot"}, NOW)
    assert d.action == "degrade" and d.level == "L1"
    # L1's parameters, the command's explicit ones over them
    assert dict(d.params) == {"cache_first": True, "model_tier": "small", "max_output_tokens": 512}
    assert feed(state, command("use_case:bot", "restore", at=later + timedelta(1), ttl_s=None)) == (
        "restored"
    )
    assert state.decide({"use_case_id": "bot"}, NOW).action == "allow"


def test_deny_beats_degrade_then_the_most_specific_target_wins(state: ControlState) -> None:
    feed(state, command("tenant:acme"))
    feed(state, command("model:gpt-4o", "degrade"))
    feed(state, command("use_case:bot", "degrade"))
    feed(state, command("prompt:bot-v7"))
    req = {"tenant_id": "acme", "use_case_id": "bot", "model": "gpt-4o"}
    # the use case is degraded, but its tenant is killed: the call must not go through
    assert state.decide(req, NOW).target == "tenant:acme"
    assert state.decide(req, NOW).action == "deny"
    assert state.decide({**req, "prompt_version": "bot-v7"}, NOW).target == "prompt:bot-v7"
    other = {"tenant_id": "beta", "use_case_id": "bot", "model": "gpt-4o"}
    assert state.decide(other, NOW).target == "use_case:bot"  # same level: more specific
    assert state.decide({**other, "use_case_id": "faq"}, NOW).target == "model:gpt-4o"


def test_unsigned_forged_and_untrusted_records_are_refused_and_counted(
    state: ControlState,
) -> None:
    key, value, headers = encode_signed(command("use_case:bot"), SIGNER)
    assert state.apply_record(key, value, None, NOW) == "unsigned"
    assert state.apply_record(key, value.replace(b"test", b"tset"), headers[0][1], NOW) == "forged"
    attacker = parse_signer(generate_ed25519_spec())
    assert feed(state, command("use_case:bot"), signer=attacker) == "unknown_key"
    assert state.decide({"use_case_id": "bot"}, NOW).action == "allow"
    assert state.counts == {"unsigned": 1, "forged": 1, "unknown_key": 1}
    assert [r[0] for r in state.rejections] == ["unsigned", "forged", "unknown_key"]


def test_signed_record_under_another_key_is_invalid(state: ControlState) -> None:
    _key, value, _ = encode_signed(command("use_case:bot"), SIGNER)
    other = b"use_case:faq"
    assert state.apply_record(other, value, SIGNER.sign(other, value), NOW) == "invalid"


def test_expired_is_refused_and_expiry_applies_locally(state: ControlState) -> None:
    assert feed(state, command("use_case:old", ttl_s=30)) == "expired"
    assert feed(state, command("use_case:bot", ttl_s=120)) == "applied"
    assert state.decide({"use_case_id": "bot"}, NOW).action == "deny"
    after = (T0 + timedelta(seconds=121)).timestamp()
    assert state.decide({"use_case_id": "bot"}, after).action == "allow"
    assert state.expire(after) == 1 and len(state) == 0


def test_duplicate_is_applied_once_and_old_command_replayed_is_refused(
    state: ControlState,
) -> None:
    kill = command("use_case:bot")
    assert feed(state, kill) == "applied"
    assert feed(state, kill) == "duplicate"
    restore = command("use_case:bot", "restore", at=T0 + timedelta(seconds=5), ttl_s=None)
    assert feed(state, restore) == "restored"
    assert feed(state, kill) == "replayed"  # an old kill sent again must not undo the restore
    assert state.decide({"use_case_id": "bot"}, NOW).action == "allow"


def test_shadow_commands_are_counted_never_enforced(state: ControlState) -> None:
    assert feed(state, command("use_case:bot", mode="shadow")) == "shadow"
    assert state.decide({"use_case_id": "bot"}, NOW).action == "allow"
