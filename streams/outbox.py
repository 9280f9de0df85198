"""Records the agents produce, held until the offsets of their inputs are committed.

Alerts, commands, dead letters, re-keyed records and tenant-stage records are not sent while a
record is handled: they wait here and go out at the next offset commit, after the dedup ids and
the state they came with (see :mod:`spendfuse.streams.state_cache`), before the offsets are
committed. A worker killed before the commit sends none of them; its successor re-handles the
same records from the same state and sends them once. Without this, a command sent just before
a ``kill -9`` would be decided and sent again after the restart.

The price would be latency (up to one commit interval), so a record that decided something
marks the outbox ``urgent`` and the agent asks for a commit right after its batch: alerts and
commands leave within milliseconds, while dead letters and tenant-stage records ride the regular
commits (``commit_interval_s``).
"""

from __future__ import annotations

from typing import Any


class Outbox:
    def __init__(self, sink: Any = None) -> None:
        self.sink = sink  # a CommitProducer; None: Faust's own producer
        self._pending: list[tuple[Any, bytes | None, bytes, Any]] = []
        self.urgent = False  # holds an alert or command: commit now rather than on the timer

    def add(self, topic: Any, key: bytes | None, value: bytes,
            headers: Any = None, *, urgent: bool = False) -> None:  # fmt: skip
        self._pending.append((topic, key, value, headers))
        self.urgent = self.urgent or urgent

    def __len__(self) -> int:
        return len(self._pending)

    def flush(self) -> int:
        """Hand every held record to the producer (non-blocking); the commit waits for them."""
        pending, self._pending = self._pending, []
        self.urgent = False
        for topic, key, value, headers in pending:
            if self.sink is not None:
                self.sink.produce(topic.get_topic_name(), value, key, headers=headers)
            else:
                topic.send_soon(key=key, value=value, headers=headers)
        return len(pending)

    def drop_partitions(self, partitions: set[int]) -> None:
        self.flush()
