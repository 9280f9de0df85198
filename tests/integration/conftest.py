"""A worker shared by the integration tests of the foundation decision path.

It reads the shared input topic for the rest of the session, so it decides on every test's
events: the fault tests (``test_faults.py``), which count every spend-rate alert of their use
cases, run before any test that starts it (pytest runs files in name order; the first to use it
is ``test_foundation_stream.py``). A new test module that uses it sorts after ``test_faults.py``,
and so does one that starts its own worker on the shared input: the fault tests' workers read the
input topic from its start, and their kill -9 checks assume it holds only their own traffic.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from spendfuse.producer import CostEventPublisher
from tests.support.kafka import WorkerProcess
from tests.support.rules import spend_limit_yaml, temp_rules_env

SPEND_LIMIT_USD = 1.0
# only the replay-vs-stream fixture's events, so its budget is its own
REPLAY_TENANT = "acme-replay"
TENANT_BUDGET = f"""version: 1
budgets:
  - {{name: replay-tenant-day, owner: "#finops", tenant_id: {REPLAY_TENANT}, period: day,
     limit_usd: 3, thresholds: [50, 100]}}
"""
# replay runs the same rules as the worker
WORKER_RULES = temp_rules_env(spend_limit_yaml(SPEND_LIMIT_USD), TENANT_BUDGET)


@pytest.fixture(scope="session")
def worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    tmp: Path = tmp_path_factory.mktemp("worker")
    proc = WorkerProcess(
        kafka_bootstrap,
        tmp,
        **WORKER_RULES,
        SPENDFUSE_MAX_EVENT_BYTES="4096",
        SPENDFUSE_MAX_RECORD_BYTES="262144",  # under Kafka's 1 MiB, so a test can go over it
        # a tiny in-memory state cache: use cases are evicted after each commit and read back
        # from RocksDB on their next event, so every test here also checks that round trip
        SPENDFUSE_STATE_CACHE_MAX_KEYS="2",
        SPENDFUSE_OUTCOME_LEDGER="true",  # cost per successful outcome (test_finops_stream)
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def publisher(kafka_bootstrap: str) -> Iterator[CostEventPublisher]:
    with CostEventPublisher(kafka_bootstrap) as pub:
        yield pub
