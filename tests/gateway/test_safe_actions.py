"""Actions that are safe to automate, record by record (pure: no broker).

Publisher time and versions decide validity and order (never the event time), deny beats
degrade, commands stay inside the scope and risk tiers they were issued for, replayed records
change nothing, and the maps that remember keys are bounded.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from spendfuse.control.publish import encode_signed
from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.control.stamp import CommandSigner
from spendfuse.gateway.state import ControlState
from spendfuse.schemas.command import (
    CommandKind,
    ControlCommand,
    DegradeParams,
    Target,
    cost_scope,
    within,
)
from spendfuse.schemas.common import DegradationLevel

SIGNER = parse_signer(generate_ed25519_spec())
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC).timestamp()
LOW = {"tenant_id": "acme", "use_case_id": "bot", "risk_tier": "low", "environment": "prod"}


def cmd(
    target: str,
    kind: str = "kill_switch",
    *,
    at: datetime | None = None,
    ttl_s: float | None = 600,
    level: str | None = None,
    **kw,
) -> ControlCommand:
    """A command as a rule builds it: stamped with the (event) time it decided at."""
    at = at or datetime.fromtimestamp(NOW, tz=UTC)
    ttype, tid = target.split(":", 1)
    lvl = DegradationLevel(level) if level else (DegradationLevel.L1 if kind == "degrade" else None)
    return ControlCommand(
        command_id=kw.pop("cid", f"{target}-{kind}-{at.timestamp()}-{level}"),
        kind=CommandKind(kind),
        target=Target(type=ttype, id=tid),
        level=lvl,
        params=DegradeParams(cache_first=True) if kind == "degrade" else DegradeParams(),
        issued_by=kw.pop("by", "rule:test"),
        reason="test",
        issued_at=at,
        expires_at=at + timedelta(seconds=ttl_s) if ttl_s else None,
        **kw,
    )


class Clock:
    def __init__(self, t: float = NOW) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def stamper(clock: Clock) -> CommandSigner:
    return CommandSigner(SIGNER, clock=clock)


@pytest.fixture
def state() -> ControlState:
    return ControlState(Verifier([SIGNER.verify_key_spec()]))


def publish(
    state: ControlState,
    stamper: CommandSigner,
    command: ControlCommand,
    appended_at: float | None = None,
) -> str:
    key, value, headers = stamper.records(command)[0]
    return state.apply_record(key, value, headers[0][1], stamper.clock(), appended_at)


# -- 1. time: the publisher's clock and a per-key version ------------------------------------
def test_event_dated_2099_gives_a_kill_that_lasts_its_ttl_and_restore_lifts_it(
    state: ControlState, stamper: CommandSigner, clock: Clock
) -> None:
    future = datetime(2099, 1, 1, tzinfo=UTC)
    kill = stamper.stamp(cmd("use_case:bot", at=future, ttl_s=600))
    assert kill.issued_at.timestamp() == NOW and kill.expires_at.timestamp() == NOW + 600
    assert kill.decided_at == future and kill.ttl_s == 600  # evidence kept, validity from now
    key, value, headers = stamper.sign(kill)
    assert state.apply_record(key, value, headers[0][1], NOW) == "applied"
    assert state.decide(LOW, NOW).action == "deny"
    assert state.decide(LOW, NOW + 601).action == "allow"  # not 2099
    clock.t += 5  # an operator lifts it; the rule's 2099 version cannot outrank it
    lift = cmd("use_case:bot", "restore", at=datetime.fromtimestamp(clock.t, UTC), ttl_s=None)
    assert publish(state, stamper, lift) == "restored"
    assert state.decide(LOW, clock.t).action == "allow"


def test_kill_decided_on_a_20_minute_old_event_arrives_in_force(
    state: ControlState, stamper: CommandSigner
) -> None:
    old = datetime.fromtimestamp(NOW - 1200, tz=UTC)
    assert publish(state, stamper, cmd("use_case:bot", at=old, ttl_s=600)) == "applied"
    assert state.decide(LOW, NOW + 300).action == "deny"


def test_versions_order_commands_not_issued_at(state: ControlState, stamper: CommandSigner) -> None:
    first = stamper.stamp(cmd("use_case:bot", ttl_s=600))
    second = stamper.stamp(cmd("use_case:bot", "restore", ttl_s=None))
    assert second.version == first.version + 1  # same millisecond: still strictly newer
    for c in (second, first):  # delivered out of order
        key, value, headers = stamper.sign(c)
        state.apply_record(key, value, headers[0][1], NOW)
    assert state.decide(LOW, NOW).action == "allow"
    assert [r[0] for r in state.rejections] == ["replayed"]


def test_signer_versions_follow_what_it_observed_on_the_topic(stamper: CommandSigner) -> None:
    stamper.observe("use_case:bot", int(NOW * 1000) + 3_600_000)  # a publisher an hour ahead
    lift = stamper.stamp(cmd("use_case:bot", "restore", ttl_s=None))
    assert lift.version == int(NOW * 1000) + 3_600_001
    records = stamper.records(lift)  # a restore is followed by a tombstone on its key
    assert [(r[0], r[1] is None) for r in records] == [
        (b"use_case:bot", False),
        (b"use_case:bot", True),
    ]


def test_stamper_memory_is_bounded() -> None:
    stamper = CommandSigner(SIGNER, clock=Clock(), max_keys=3)
    for i in range(10):
        stamper.stamp(cmd(f"use_case:u{i}"))
    assert len(stamper._last) == 3


# -- 2. replayed records ----------------------------------------------------------------------
def test_old_record_resent_is_refused_by_running_and_restarted_gateways(
    state: ControlState, stamper: CommandSigner, clock: Clock
) -> None:
    kill_record = stamper.records(cmd("use_case:bot"))[0]
    key, value, headers = kill_record
    assert state.apply_record(key, value, headers[0][1], NOW, NOW + 0.05) == "applied"
    clock.t += 60
    assert publish(state, stamper, cmd("use_case:bot", "restore", ttl_s=None), NOW + 60) == (
        "restored"
    )
    # an attacker without the key re-sends the old kill: soon after, then an hour later
    assert state.apply_record(key, value, headers[0][1], NOW + 120, NOW + 120) == "replayed"
    resent_at = NOW + 3600
    assert state.apply_record(key, value, headers[0][1], resent_at, resent_at) == "late"
    restarted = ControlState(Verifier([SIGNER.verify_key_spec()]))  # after compaction: only it
    assert restarted.apply_record(key, value, headers[0][1], resent_at, resent_at) == "late"
    assert restarted.decide(LOW, resent_at).action == "allow"
    assert restarted.counts["late"] == 1


def test_tombstones_never_lift(state: ControlState, stamper: CommandSigner) -> None:
    assert publish(state, stamper, cmd("use_case:bot")) == "applied"
    assert state.apply_record(b"use_case:bot", None, SIGNER.sign(b"use_case:bot", b""), NOW) == (
        "tombstone"
    )
    assert state.decide(LOW, NOW).action == "deny"


def test_seen_versions_are_bounded(stamper: CommandSigner, clock: Clock) -> None:
    state = ControlState(Verifier([SIGNER.verify_key_spec()]), max_seen=5)
    for i in range(50):
        publish(state, stamper, cmd(f"use_case:u{i}"))
        clock.t += 0.01
        publish(state, stamper, cmd(f"use_case:u{i}", "restore", ttl_s=None))
    assert len(state) == 0 and len(state._seen) == 5


# -- 3. precedence and the risk-tier guardrail -------------------------------------------------
def test_deny_beats_degrade_and_the_strongest_degrade_wins(
    state: ControlState, stamper: CommandSigner
) -> None:
    publish(state, stamper, cmd("model:gpt-4o"))
    publish(state, stamper, cmd("tenant:acme"))
    publish(state, stamper, cmd("use_case:bot", "degrade"))
    req = {**LOW, "model": "gpt-4o"}
    assert state.decide(req, NOW).action == "deny"
    other = {**LOW, "tenant_id": "beta", "model": "claude"}
    publish(state, stamper, cmd("tenant:beta", "degrade", level="L3"))
    d = state.decide(other, NOW)
    assert (d.action, d.level, d.target) == ("degrade", "L3", "tenant:beta")


@pytest.mark.parametrize("tier", ["medium", "high", "critical", None])
def test_cost_commands_never_act_on_requests_not_known_to_be_low_risk(
    state: ControlState, stamper: CommandSigner, tier: str | None
) -> None:
    publish(state, stamper, cmd("use_case:bot"))
    publish(state, stamper, cmd("model:gpt-4o", "degrade", level="L2"))
    req = {**LOW, "risk_tier": tier, "model": "gpt-4o"}
    assert state.decide(req, NOW).action == "allow"
    publish(state, stamper, cmd("tenant:acme", risk_protection=True, by="rule:l4"))
    assert state.decide(req, NOW).target == "tenant:acme"


def test_default_risk_tier_is_an_explicit_gateway_choice(stamper: CommandSigner) -> None:
    state = ControlState(Verifier([SIGNER.verify_key_spec()]), default_risk_tier="low")
    publish(state, stamper, cmd("use_case:bot"))
    assert state.decide({"use_case_id": "bot"}, NOW).action == "deny"
    assert state.decide({"use_case_id": "bot", "risk_tier": "high"}, NOW).action == "allow"


# -- 4. reach: scoped targets and trace targets -----------------------------------------------
def test_tool_kill_reaches_only_the_scope_that_tripped_it(
    state: ControlState, stamper: CommandSigner
) -> None:
    scoped = cmd("tool:web_search", within=cost_scope("acme", "bot"))
    assert scoped.key() == "tool:web_search|tenant=acme|use_case=bot|risk=low"
    assert publish(state, stamper, scoped) == "applied"
    req = {**LOW, "tool": "web_search"}
    assert state.decide(req, NOW).action == "deny"
    assert state.decide({**req, "use_case_id": "triage"}, NOW).action == "allow"
    assert state.decide({**req, "tenant_id": "beta"}, NOW).action == "allow"
    assert state.decide({k: v for k, v in req.items() if k != "tenant_id"}, NOW).action == "allow"


def test_sandbox_quota_kill_touches_only_sandbox_traffic(
    state: ControlState, stamper: CommandSigner
) -> None:
    kill = cmd("tenant:acme", within=within(environment="sandbox", risk_tiers=["low"]))
    publish(state, stamper, kill)
    assert state.decide({**LOW, "environment": "sandbox"}, NOW).action == "deny"
    assert state.decide(LOW, NOW).action == "allow"  # prod


def test_l1_degrade_for_low_risk_spares_the_use_cases_high_risk_requests(
    state: ControlState, stamper: CommandSigner
) -> None:
    l1 = cmd("use_case:bot", "degrade", risk_protection=True, within=within(risk_tiers=["low"]))
    publish(state, stamper, l1)
    assert state.decide(LOW, NOW).action == "degrade"
    assert state.decide({**LOW, "risk_tier": "high"}, NOW).action == "allow"


def test_two_scopes_of_one_target_are_two_keys_and_lifted_separately(
    state: ControlState, stamper: CommandSigner, clock: Clock
) -> None:
    publish(state, stamper, cmd("tool:search", within=cost_scope("acme", "bot")))
    publish(state, stamper, cmd("tool:search", within=cost_scope("acme", "faq")))
    assert len(state) == 2
    clock.t += 1
    publish(
        state, stamper, cmd("tool:search", "restore", ttl_s=None, within=cost_scope("acme", "bot"))
    )
    req = {**LOW, "tool": "search"}
    assert state.decide(req, NOW + 1).action == "allow"
    assert state.decide({**req, "use_case_id": "faq"}, NOW + 1).action == "deny"


def test_trace_target_stops_one_looping_task_at_every_risk_tier(
    state: ControlState, stamper: CommandSigner
) -> None:
    publish(state, stamper, cmd("trace:t-42", risk_protection=True, by="rule:loop_guard"))
    for tier in ("low", "medium", "critical"):
        req = {**LOW, "risk_tier": tier, "trace_id": "t-42"}
        assert state.decide(req, NOW).action == "deny"
        assert state.decide({**req, "trace_id": "t-43"}, NOW).action == "allow"


def test_scope_spelling_is_canonical() -> None:
    a = within(tenant_id="acme", risk_tiers=["medium", "low", "low"])
    b = within(risk_tiers=["low", "medium"], tenant_id="acme")
    assert a == b and a.key == "tenant=acme|risk=low+medium"
    assert within() is None


def test_record_under_a_scoped_key_must_match_its_body(state: ControlState) -> None:
    scoped = cmd("tool:search", within=cost_scope("acme", "bot"))
    _, value, _ = encode_signed(scoped, SIGNER)
    wide = b"tool:search"  # re-keyed to reach every tenant: refused
    assert state.apply_record(wide, value, SIGNER.sign(wide, value), NOW) == "invalid"


# -- settings --
def test_gateway_settings_declare_the_fail_mode_and_pin_the_algorithm(monkeypatch) -> None:
    from spendfuse.control.errors import KeyConfigError
    from spendfuse.gateway.client import ControlClient
    from spendfuse.gateway.decision import DENY_UNAVAILABLE

    monkeypatch.setenv("SPENDFUSE_GATEWAY_BOOTSTRAP_SERVERS", "127.0.0.1:1")
    monkeypatch.setenv("SPENDFUSE_GATEWAY_VERIFY_KEYS", SIGNER.verify_key_spec())
    monkeypatch.setenv("SPENDFUSE_GATEWAY_FAIL_MODE", "closed")
    monkeypatch.setenv("SPENDFUSE_GATEWAY_DEFAULT_RISK_TIER", "low")
    client = ControlClient.from_settings()
    assert client.fail_mode == "closed" and client.verifier.algorithm == "ed25519"
    assert client.state.default_risk_tier == "low"
    assert not client.ready and client.decide(LOW) is DENY_UNAVAILABLE  # never started
    monkeypatch.setenv("SPENDFUSE_GATEWAY_VERIFY_KEYS", generate_ed25519_spec())
    with pytest.raises(KeyConfigError, match="private"):
        ControlClient.from_settings()
