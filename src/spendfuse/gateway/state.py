"""The gateway's in-memory control state: verify, apply and answer ``decide`` from memory.

Pure (no Kafka, no clock: ``now`` is passed in as epoch seconds), so every acceptance rule is
unit-tested without a broker. One record at a time goes through :meth:`ControlState.apply_record`:

* ``unsigned`` / ``forged`` / ``unknown_key``: the signature header is missing, wrong, or made
  with a key this gateway does not trust;
* ``invalid``: not a valid command, or its record key is not its target's key;
* ``expired``: ``expires_at`` is already past (it still clears an older command on that target);
* ``duplicate``: the command in force on the target has this very ``command_id`` (a worker that
  re-processed after a restart re-issues the same id: applied once);
* ``replayed``: issued before the latest command already seen for the target (an old, validly
  signed command sent again must not undo a newer one);
* ``shadow``: ``mode: shadow``, counted, never enforced;
* ``applied`` / ``restored``: the command is now the state in force for its target.

Specificity: when several commands match a request the most specific target wins, in the order
prompt version > tool > use case > model > route policy > tenant (narrowest set of requests
first: a prompt version or tool belongs to one use case; a model or route policy spans use cases;
a tenant spans everything it runs). A restore *lifts* a target; it never acts as an exemption.
"""

from __future__ import annotations

import contextlib
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from spendfuse.control.signing import Verifier, VerifyOutcome
from spendfuse.gateway.decision import ALLOW, Decision
from spendfuse.schemas.command import CommandKind, ControlCommand, TargetType

# Target type -> the request attribute it matches (cost-event field names where there is one).
REQUEST_ATTRIBUTE: dict[TargetType, str] = {
    TargetType.PROMPT: "prompt_version",
    TargetType.TOOL: "tool",
    TargetType.USE_CASE: "use_case_id",
    TargetType.MODEL: "model",
    TargetType.ROUTE_POLICY: "route_policy_version",
    TargetType.TENANT: "tenant_id",
}
DEFAULT_SPECIFICITY: tuple[TargetType, ...] = tuple(REQUEST_ATTRIBUTE)


@dataclass(slots=True)
class _Seen:
    issued_at_s: float
    command_id: str


def build_decision(command: ControlCommand) -> Decision:
    """The decision a command gives every request it matches."""
    expires = command.expires_at.timestamp() if command.expires_at else None
    who = f"{command.issued_by}: {command.reason}"
    if command.kind is CommandKind.KILL_SWITCH:
        return Decision(
            "deny", f"kill switch on {command.key()} ({who})", target=command.key(),
            command_id=command.command_id, issued_by=command.issued_by, expires_at_s=expires,
            how_to_lift=command.how_to_lift,
        )  # fmt: skip
    params = command.params.model_dump(exclude_none=True)
    return Decision(
        "degrade", f"degraded to {command.level or 'L1'} on {command.key()} ({who})",
        level=command.level.value if command.level else None, params=params,
        target=command.key(), command_id=command.command_id, issued_by=command.issued_by,
        expires_at_s=expires, how_to_lift=command.how_to_lift,
    )  # fmt: skip


class ControlState:
    """Commands in force, indexed by target type then target id."""

    def __init__(
        self, verifier: Verifier, specificity: tuple[TargetType, ...] = DEFAULT_SPECIFICITY
    ) -> None:
        self.verifier = verifier
        self.counts: Counter[str] = Counter()
        self.rejections: deque[tuple[str, str, str | None]] = deque(maxlen=256)
        self._tables: dict[TargetType, dict[str, Decision]] = {t: {} for t in specificity}
        self._lookup: tuple[tuple[str, dict[str, Decision]], ...] = tuple(
            (REQUEST_ATTRIBUTE[t], self._tables[t]) for t in specificity
        )
        self._seen: dict[str, _Seen] = {}

    def __len__(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def decide(self, request: Mapping[str, Any], now: float) -> Decision:
        """Allow, or the most specific unexpired command matching ``request``'s attributes."""
        get = request.get
        for attr, table in self._lookup:
            if table:
                value = get(attr)
                if value is not None:
                    hit = table.get(value)
                    if hit is not None and (hit.expires_at_s is None or now < hit.expires_at_s):
                        return hit
        return ALLOW

    def apply_record(
        self, key: bytes | None, value: bytes | None, signature: bytes | None, now: float
    ) -> str:
        """Verify and apply one control record; return (and count) the outcome."""
        outcome, command = self._accept(key or b"", value, signature, now)
        self.counts[outcome] += 1
        if outcome not in ("applied", "restored", "duplicate", "shadow"):
            self.rejections.append(
                (outcome, (key or b"").decode(errors="replace"), command and command.command_id)
            )
        return outcome

    def _accept(
        self, key: bytes, value: bytes | None, signature: bytes | None, now: float
    ) -> tuple[str, ControlCommand | None]:
        verdict = self.verifier.verify(key, value or b"", signature)
        if verdict != VerifyOutcome.OK:
            return verdict, None
        if value is None:  # a signed tombstone: the target has no state any more
            self._drop(key.decode(errors="replace"))
            return "restored", None
        try:
            command = ControlCommand.model_validate(orjson.loads(value))
        except (orjson.JSONDecodeError, ValidationError):
            return "invalid", None
        target_key = command.key()
        if target_key != key.decode(errors="replace"):
            return "invalid", command
        issued = command.issued_at.timestamp()
        seen = self._seen.get(target_key)
        if seen is not None:
            if seen.command_id == command.command_id:
                return "duplicate", command
            if issued < seen.issued_at_s:
                return "replayed", command
        if command.mode == "shadow":
            return "shadow", command
        self._seen[target_key] = _Seen(issued, command.command_id)
        table = self._tables.get(command.target.type)
        if command.expires_at is not None and command.expires_at.timestamp() <= now:
            if table is not None:
                table.pop(command.target.id, None)
            return "expired", command
        if command.kind is CommandKind.RESTORE or table is None:
            self._drop(target_key)
            return "restored", command
        table[command.target.id] = build_decision(command)
        return "applied", command

    def _drop(self, target_key: str) -> None:
        type_name, _, target_id = target_key.partition(":")
        with contextlib.suppress(ValueError):  # an unknown target type holds nothing
            self._tables.get(TargetType(type_name), {}).pop(target_id, None)

    def expire(self, now: float) -> int:
        """Forget commands whose expiry has passed (``decide`` already ignores them)."""
        dropped = 0
        for table in self._tables.values():
            gone = [k for k, d in table.items() if d.expires_at_s and d.expires_at_s <= now]
            for target_id in gone:
                del table[target_id]
                dropped += 1
        self.counts["expired_in_force"] += dropped
        return dropped

    def active(self) -> dict[str, Decision]:
        """The commands in force, by target key (for status pages and tests)."""
        return {d.target or "": d for table in self._tables.values() for d in table.values()}
