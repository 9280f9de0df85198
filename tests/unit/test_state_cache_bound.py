"""The worker's in-memory state cache stays bounded and loses nothing it evicts."""

from __future__ import annotations

from typing import Any

from streams.state_cache import WriteBehindStates


class _Table:
    """The two things WriteBehindStates uses of a Faust table: its store and its changelog."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str]] = []

    def send_changelog(self, partition: int, key: str, value: Any) -> None:
        self.changelog.append((partition, key))


def test_clean_keys_beyond_the_bound_are_evicted_least_recent_first() -> None:
    table = _Table()
    states = WriteBehindStates(table, max_cached=2)
    states.partition = 0
    for key in ("a", "b", "c"):
        states[key] = {"n": key}
    states["a"] = {"n": "a2"}  # a is now the most recently written
    assert states.flush() == 3
    assert list(states._cache) == ["c", "a"]  # b, least recently written, went
    assert table.data["b"] == {"n": "b"}  # ... but it is in the store
    assert states.get("b") == {"n": "b"}
    assert sorted(k for _, k in table.changelog) == ["a", "b", "c"]


def test_dirty_keys_are_never_evicted_before_they_are_written() -> None:
    table = _Table()
    states = WriteBehindStates(table, max_cached=1)
    states.partition = 3
    states["a"] = 1
    states["b"] = 2
    states.flush(["a"])  # only a is written; b stays dirty and cached though over the bound
    assert "b" in states._cache and "a" not in states._cache
    assert table.data == {"a": 1}
    states.flush()
    assert table.data == {"a": 1, "b": 2}
    assert table.changelog == [(3, "a"), (3, "b")]
