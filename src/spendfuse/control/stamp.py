"""Stamp and sign control commands at publish time: the publisher's clock and a per-key version.

A rule decides in event time, so that a replay decides what the stream decided. But an event's
time is evidence, never validity: a kill decided on an event dated 2099 must not last until 2099,
and one decided on an event 20 minutes old must not arrive already expired. So every publisher
(the worker, ``spendfuse kill|degrade|restore``, the dashboard's lift) passes its commands through
:class:`CommandSigner`, which sets, just before signing:

* ``decided_at``: the time the builder gave (the rule's event time), kept as evidence;
* ``issued_at``: the publisher's clock now;
* ``ttl_s`` / ``expires_at``: the builder's TTL (``ttl_s``, or its ``expires_at - issued_at``),
  counted from ``issued_at``;
* ``version``: ``max(now in ms, last version this publisher saw for the key + 1)``, a hybrid
  logical clock. Gateways keep the highest version per key, so log order, compaction and every
  gateway agree, and a restore published after a kill is newer than it even when the kill was
  decided on an event from the future.

The signer learns versions from the control topic too (:meth:`CommandSigner.observe`), so that
two publishers with skewed clocks still order their commands on one key. The map is bounded
(:data:`MAX_TRACKED_KEYS`, least recently used dropped): a dropped key falls back to the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from cachetools import LRUCache

from spendfuse.control.signing import Signer
from spendfuse.schemas.codec import encode
from spendfuse.schemas.command import CommandKind, ControlCommand

MAX_TRACKED_KEYS = 100_000
Record = tuple[bytes, bytes | None, list[tuple[str, bytes]]]


class CommandSigner:
    """Stamps (publisher time, TTL, version) and signs commands; thread-safe."""

    def __init__(
        self,
        signer: Signer,
        *,
        clock: Callable[[], float] = time.time,
        max_keys: int = MAX_TRACKED_KEYS,
        tombstone_lifts: bool = True,
    ) -> None:
        self.signer = signer
        self.clock = clock
        self.tombstone_lifts = tombstone_lifts
        self._last: LRUCache[str, int] = LRUCache(maxsize=max_keys)
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str:
        return self.signer.key_id

    def verify_key_spec(self) -> str:
        return self.signer.verify_key_spec()

    def headers(self, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
        """Sign raw bytes (records that are not commands, e.g. tests' hand-made records)."""
        return self.signer.headers(key, value)

    def observe(self, key: str, version: int) -> None:
        """A version seen on the control topic: the next one for ``key`` will be higher."""
        with self._lock:
            if version > self._last.get(key, -1):
                self._last[key] = version

    def next_version(self, key: str, now_ms: int) -> int:
        with self._lock:
            version = max(now_ms, self._last.get(key, -1) + 1)
            self._last[key] = version
            return version

    def stamp(self, command: ControlCommand, *, now: float | None = None) -> ControlCommand:
        """The command as published: publisher time, TTL from now, a fresh version."""
        now = self.clock() if now is None else now
        issued = datetime.fromtimestamp(now, tz=UTC)
        ttl = command.ttl_seconds()
        return command.model_copy(
            update={
                "decided_at": command.decided_at or command.issued_at,
                "issued_at": issued,
                "ttl_s": ttl,
                "expires_at": issued + timedelta(seconds=ttl) if ttl is not None else None,
                "version": self.next_version(command.key(), int(now * 1000)),
            }
        )

    def sign(self, command: ControlCommand) -> Record:
        """Key, value and headers of an already stamped command."""
        key = command.key().encode()
        value = encode(command)
        return key, value, self.signer.headers(key, value)

    def records(self, command: ControlCommand, *, now: float | None = None) -> list[Record]:
        """The records that publish ``command`` (see :meth:`publish`)."""
        return self.publish(command, now=now)[1]

    def publish(
        self, command: ControlCommand, *, now: float | None = None
    ) -> tuple[ControlCommand, list[Record]]:
        """The stamped command and its records: the signed command, and after a restore a
        tombstone on its key, so compaction forgets the lifted key.

        Gateways ignore tombstones (they carry no version, so an old one could be re-sent): the
        signed restore before it is what lifts. A restarted gateway then finds nothing on the key.
        """
        stamped = self.stamp(command, now=now)
        out = [self.sign(stamped)]
        if (
            self.tombstone_lifts
            and stamped.kind is CommandKind.RESTORE
            and stamped.mode == "enforce"
        ):
            out.append((out[0][0], None, []))
        return stamped, out
