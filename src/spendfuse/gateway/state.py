"""The gateway's in-memory control state: verify, apply and answer ``decide`` from memory.

Pure (no Kafka, no clock: ``now`` is passed in as epoch seconds), so every acceptance rule is
unit-tested without a broker. One record at a time goes through :meth:`ControlState.apply_record`:

* ``unsigned`` / ``forged`` / ``unknown_key``: the signature header is missing, wrong, made with
  another algorithm than the one pinned, or with a key this gateway does not trust;
* ``invalid``: not a valid command, or its record key is not its own key;
* ``late``: the broker appended the record more than ``max_publish_delay_s`` after the publisher
  signed it (its ``issued_at``): an old signed record sent again. The broker's append time
  (``message.timestamp.type=LogAppendTime`` on the control topic) is the witness an attacker
  without a key cannot forge, so running and restarted gateways refuse the same records;
* ``expired``: ``expires_at`` (publisher time + TTL) is already past;
* ``duplicate``: the very version already applied on the key (a record read twice);
* ``replayed``: a version lower than the newest already seen on the key;
* ``shadow``: ``mode: shadow``, counted, never enforced;
* ``applied`` / ``restored``: the command is now the state in force on its key;
* ``tombstone``: a record without a value, ignored: tombstones carry no version, so one sent
  again could otherwise lift a newer kill. The signed restore before it did the lifting.

Precedence in :meth:`ControlState.decide`, over every command whose target and scope match:

1. a command not marked ``risk_protection`` never acts on a request whose risk tier is not low
   (a request that states no risk tier is not known to be low: set ``default_risk_tier`` for
   gateways whose traffic is all low-risk);
2. deny beats degrade;
3. among degrades the strongest level wins (L4 > L3 > L2 > L1). What a level means for the
   request comes from the command's level, with its explicit ``params`` applied over it: a
   batch or sandbox request under a level that pauses it (L2, L3) is denied as ``paused``, and
   L4 (``manual_workflow``) denies every request it reaches (see :mod:`.decision`). A kill
   or L4 beats a pause (the request should not be queued for a retry), a pause beats degrades;
4. ties go to the most specific target: trace > prompt version > tool > use case > model >
   route policy > tenant (narrowest set of requests first).

Memory: commands in force are kept until they expire or are lifted; the versions of keys with
nothing in force are kept in an LRU of ``max_seen`` keys (100,000 by default, about 20 MB). A key
dropped from it is safe: a record for it re-sent later is older than ``max_publish_delay_s`` by
then and refused as ``late``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import orjson
from cachetools import LRUCache
from pydantic import ValidationError

from spendfuse.control.signing import Verifier, VerifyOutcome
from spendfuse.gateway.decision import ALLOW, Decision
from spendfuse.schemas.command import CommandKind, ControlCommand, TargetType, level_params
from spendfuse.schemas.common import DegradationLevel

# Target type -> the request attribute it matches (cost-event field names where there is one).
REQUEST_ATTRIBUTE: dict[TargetType, str] = {
    TargetType.TRACE: "trace_id",
    TargetType.PROMPT: "prompt_version",
    TargetType.TOOL: "tool",
    TargetType.USE_CASE: "use_case_id",
    TargetType.MODEL: "model",
    TargetType.ROUTE_POLICY: "route_policy_version",
    TargetType.TENANT: "tenant_id",
}
DEFAULT_SPECIFICITY: tuple[TargetType, ...] = tuple(REQUEST_ATTRIBUTE)
LEVEL_RANK = {"L1": 1, "L2": 2, "L3": 3, "L4": 4}
MAX_SEEN = 100_000
MAX_PUBLISH_DELAY_S = 900.0
ACCEPTED = frozenset({"applied", "restored", "duplicate", "shadow", "tombstone"})
# Workload -> the parameter that pauses it.
PAUSES = (("batch", "pause_batch"), ("sandbox", "pause_sandbox"))


def workloads_of(get: Callable[[str], Any]) -> tuple[Any, ...]:
    """The workloads a request belongs to: its stated ``workload`` (batch, sandbox,
    interactive), and sandbox when its ``environment`` is sandbox."""
    return (get("workload"), "sandbox" if get("environment") == "sandbox" else None)


@dataclass(slots=True, eq=False)
class _Entry:
    """One command in force, with what ``decide`` checks before using its decision."""

    decision: Decision
    version: int
    expires_s: float | None
    protect: bool  # risk_protection: may act on medium/high/critical requests
    rank: int  # 0 for deny; the level for degrade
    tenant: str | None = None
    use_case: str | None = None
    env: str | None = None
    tiers: frozenset[str] | None = None
    scoped: bool = False
    paused: Mapping[str, Decision] | None = None  # workload -> its denial (L2, L3)

    def in_scope(self, get: Callable[[str], Any], tier: Any) -> bool:
        return (
            (self.tenant is None or get("tenant_id") == self.tenant)
            and (self.use_case is None or get("use_case_id") == self.use_case)
            and (self.env is None or get("environment") == self.env)
            and (self.tiers is None or tier in self.tiers)
        )


def effective_params(command: ControlCommand) -> dict[str, Any]:
    """The level's gateway parameters with the command's explicit ones applied over them (a
    degrade that names no level is L1, as its rank is)."""
    params = level_params(command.level or DegradationLevel.L1).model_dump(exclude_none=True)
    params.update(command.params.model_dump(exclude_none=True))
    return params


def build_decision(command: ControlCommand) -> Decision:
    """The decision a command gives every request it matches (but paused workloads)."""
    expires = command.expires_at.timestamp() if command.expires_at else None
    who = f"{command.issued_by}: {command.reason}"
    key = command.key()
    common: dict[str, Any] = {
        "target": key,
        "command_id": command.command_id,
        "issued_by": command.issued_by,
        "expires_at_s": expires,
        "how_to_lift": command.how_to_lift,
        "version": command.version,
        "handoff_to_human": command.handoff_to_human,
    }
    handoff = "; the task is handed to a human" if command.handoff_to_human else ""
    if command.kind is CommandKind.KILL_SWITCH:
        return Decision("deny", f"kill switch on {key} ({who}){handoff}", **common)
    params = effective_params(command)
    level = command.level.value if command.level else None
    frozen = MappingProxyType(params)
    scaling_stopped = bool(params.get("scaling_stopped"))
    if params.get("manual_workflow"):
        return Decision(
            "deny",
            f"manual workflow forced at {level or 'L4'} on {key} ({who}): do this through the"
            f" manual workflow, not the model{handoff}",
            level=level,
            params=frozen,
            manual_workflow=True,
            scaling_stopped=scaling_stopped,
            **common,
        )
    return Decision(
        "degrade",
        f"degraded to {level or 'L1'} on {key} ({who})",
        level=level,
        params=frozen,
        scaling_stopped=scaling_stopped,
        **common,
    )


def paused_decisions(decision: Decision) -> dict[str, Decision]:
    """The denial each workload a degrade pauses gets (built once, like the decision)."""
    if decision.action != "degrade":
        return {}
    return {
        workload: replace(
            decision,
            action="deny",
            reason=f"{workload} paused at {decision.level or 'L1'} on {decision.target}"
            f" ({decision.issued_by}): queue it and retry once the command is lifted or expires",
            paused=workload,
        )
        for workload, flag in PAUSES
        if decision.params.get(flag)
    }


def _entry(command: ControlCommand) -> _Entry:
    decision = build_decision(command)
    paused = paused_decisions(decision)
    scope = command.within
    return _Entry(
        decision,
        command.order(),
        decision.expires_at_s,
        command.risk_protection,
        0 if decision.action == "deny" else LEVEL_RANK.get(decision.level or "L1", 1),
        tenant=scope.tenant_id if scope else None,
        use_case=scope.use_case_id if scope else None,
        env=scope.environment.value if scope and scope.environment else None,
        tiers=frozenset(t.value for t in scope.risk_tiers) if scope and scope.risk_tiers else None,
        scoped=scope is not None and not scope.is_empty(),
        paused=MappingProxyType(paused) if paused else None,
    )


class ControlState:
    """Commands in force, indexed by target type, then target id, then record key."""

    def __init__(
        self,
        verifier: Verifier,
        specificity: tuple[TargetType, ...] = DEFAULT_SPECIFICITY,
        *,
        default_risk_tier: str | None = None,
        max_seen: int = MAX_SEEN,
        max_publish_delay_s: float = MAX_PUBLISH_DELAY_S,
    ) -> None:
        self.verifier = verifier
        self.default_risk_tier = default_risk_tier
        self.max_publish_delay_s = max_publish_delay_s
        self.counts: Counter[str] = Counter()
        self.rejections: deque[tuple[str, str, str | None]] = deque(maxlen=256)
        self._tables: dict[TargetType, dict[str, tuple[_Entry, ...]]] = {t: {} for t in specificity}
        self._lookup: tuple[tuple[str, dict[str, tuple[_Entry, ...]]], ...] = tuple(
            (REQUEST_ATTRIBUTE[t], self._tables[t]) for t in specificity
        )
        self._in_force: dict[str, tuple[ControlCommand, _Entry]] = {}
        self._seen: LRUCache[str, int] = LRUCache(maxsize=max_seen)  # key -> version, lifted keys

    def __len__(self) -> int:
        return len(self._in_force)

    def decide(self, request: Mapping[str, Any], now: float) -> Decision:
        """Allow, or the command that wins among those matching ``request`` (see the module)."""
        get = request.get
        tier = get("risk_tier") or self.default_risk_tier
        protected = tier != "low"
        best: _Entry | None = None
        pause: Decision | None = None
        workloads: tuple[Any, ...] | None = None  # looked up only if a matching command pauses
        for attr, table in self._lookup:
            if table:
                value = get(attr)
                if value is not None:
                    entries = table.get(value)
                    if entries:
                        for e in entries:
                            if (e.expires_s is not None and now >= e.expires_s) or (
                                protected and not e.protect
                            ):
                                continue
                            if e.scoped and not e.in_scope(get, tier):
                                continue
                            if e.rank == 0:
                                return e.decision  # deny beats degrade; most specific first
                            if e.paused is not None and pause is None:
                                if workloads is None:
                                    workloads = workloads_of(get)
                                for w in workloads:
                                    if w in e.paused:
                                        pause = e.paused[w]  # beats degrades, not a kill
                                        break
                            if best is None or e.rank > best.rank:
                                best = e
        if pause is not None:
            return pause
        return ALLOW if best is None else best.decision

    def apply_record(
        self,
        key: bytes | None,
        value: bytes | None,
        signature: bytes | None,
        now: float,
        appended_at: float | None = None,
    ) -> str:
        """Verify and apply one control record; return (and count) the outcome.

        ``appended_at`` is the broker's append time (epoch s) when the topic records it
        (LogAppendTime); with it, records signed long before they were appended are ``late``.
        """
        outcome, command = self._accept(key or b"", value, signature, now, appended_at)
        self.counts[outcome] += 1
        if outcome not in ACCEPTED:
            self.rejections.append(
                (outcome, (key or b"").decode(errors="replace"), command and command.command_id)
            )
        return outcome

    def version_of(self, key: str) -> int | None:
        """The newest version seen on a record key (in force or lifted), if remembered."""
        held = self._in_force.get(key)
        return held[1].version if held is not None else self._seen.get(key)

    def _accept(
        self,
        key: bytes,
        value: bytes | None,
        signature: bytes | None,
        now: float,
        appended_at: float | None,
    ) -> tuple[str, ControlCommand | None]:
        if value is None:  # compaction's delete marker: carries no version, so it never lifts
            return "tombstone", None
        verdict = self.verifier.verify(key, value, signature)
        if verdict != VerifyOutcome.OK:
            return verdict, None
        try:
            command = ControlCommand.model_validate(orjson.loads(value))
        except (orjson.JSONDecodeError, ValidationError):
            return "invalid", None
        record_key = command.key()
        if record_key != key.decode(errors="replace"):
            return "invalid", command
        issued = command.issued_at.timestamp()
        if appended_at is not None and appended_at - issued > self.max_publish_delay_s:
            return "late", command
        version = command.order()
        seen = self.version_of(record_key)
        if seen is not None:
            if version == seen:
                return "duplicate", command
            if version < seen:
                return "replayed", command
        if command.mode == "shadow":
            return "shadow", command
        self._drop(record_key)
        self._seen[record_key] = version
        if command.expires_at is not None and command.expires_at.timestamp() <= now:
            return "expired", command
        if command.kind is CommandKind.RESTORE or command.target.type not in self._tables:
            return "restored", command
        self._put(record_key, command)
        return "applied", command

    def _put(self, record_key: str, command: ControlCommand) -> None:
        entry = _entry(command)
        self._seen.pop(record_key, None)
        self._in_force[record_key] = (command, entry)
        table = self._tables[command.target.type]
        held = table.get(command.target.id, ())
        others = tuple(e for e in held if e.decision.target != record_key)
        table[command.target.id] = (*others, entry)

    def _drop(self, record_key: str) -> None:
        held = self._in_force.pop(record_key, None)
        if held is None:
            return
        command, entry = held
        self._seen[record_key] = entry.version
        table = self._tables[command.target.type]
        rest = tuple(e for e in table.get(command.target.id, ()) if e is not entry)
        if rest:
            table[command.target.id] = rest
        else:
            table.pop(command.target.id, None)

    def expire(self, now: float) -> int:
        """Forget commands whose expiry has passed (``decide`` already ignores them)."""
        gone = [k for k, (_, e) in self._in_force.items() if e.expires_s and e.expires_s <= now]
        for record_key in gone:
            self._drop(record_key)
        self.counts["expired_in_force"] += len(gone)
        return len(gone)

    def active(self) -> dict[str, Decision]:
        """The commands in force, by record key (for status pages and tests)."""
        return {k: e.decision for k, (_, e) in self._in_force.items()}

    def known_versions(self) -> dict[str, int]:
        """The newest version seen per record key (in force, or lifted and still remembered)."""
        versions = dict(self._seen.items())
        versions.update((k, e.version) for k, (_, e) in self._in_force.items())
        return versions

    def commands_in_force(self) -> dict[str, ControlCommand]:
        """The commands in force, by record key (an operator's restore lifts each of them)."""
        return {k: c for k, (c, _) in self._in_force.items()}
