"""Test session setup: one real Apache Kafka broker for every test that needs one.

The broker is started from the jars Maven resolves (cached), on free ports, once per session,
and stopped at the end. ``KAFKA_BOOTSTRAP_SERVERS`` points the suite at an existing cluster
instead. If the broker cannot start, the tests that need it fail loudly: they are never skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from spendfuse.localkafka import LocalKafka

# The machine is shared with a broker and workers: judge properties, not speed.
settings.register_profile(
    "spendfuse", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("spendfuse")


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    existing = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or os.environ.get(
        "SPENDFUSE_BOOTSTRAP_SERVERS"
    )
    if existing:
        yield existing
        return
    broker = LocalKafka(tmp_path_factory.mktemp("kafka"), partitions=4)
    started = time.monotonic()
    servers = broker.start()
    print(f"\nlocal Kafka broker ready at {servers} in {time.monotonic() - started:.1f}s")
    try:
        yield servers
    finally:
        broker.stop()


@pytest.fixture
def fixtures_dir() -> Path:
    return Path(__file__).parent / "fixtures"
