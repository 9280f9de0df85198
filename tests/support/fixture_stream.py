"""A shared event fixture for replay-vs-stream agreement, made unique per run."""

from __future__ import annotations

from pathlib import Path

FIXTURE = Path(__file__).parent.parent / "fixtures" / "replay_stream_events.jsonl"
PLACEHOLDER = b"@RUN@"


def load_fixture(run_id: str) -> list[bytes]:
    """The fixture's records with each use case suffixed by ``run_id`` (kept byte-exact else)."""
    lines = FIXTURE.read_bytes().splitlines()
    return [line.replace(PLACEHOLDER, run_id.encode()) for line in lines if line.strip()]
