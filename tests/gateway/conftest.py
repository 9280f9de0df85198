"""A signing worker and gateway clients on the real broker, for the control-path tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from spendfuse.control.signing import Signer, Verifier, generate_ed25519_spec, parse_signer
from spendfuse.gateway.client import ControlClient
from spendfuse.producer import CostEventPublisher
from spendfuse.schemas import topics
from spendfuse.settings import Settings
from spendfuse.streams.topics import ensure_topics
from tests.support.kafka import WorkerProcess
from tests.support.rules import rules_env, spend_limit_yaml

SPEND_LIMIT_USD = 1.0


@pytest.fixture(scope="session")
def signing_spec() -> str:
    return generate_ed25519_spec()


@pytest.fixture(scope="session")
def signer(signing_spec: str) -> Signer:
    return parse_signer(signing_spec)


@pytest.fixture(scope="module")
def signing_worker(
    kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, signing_spec: str
) -> Iterator[WorkerProcess]:
    """Module-scoped: every worker reads the shared input topic, and one acting with other
    settings must not outlive these tests and add alerts or commands to other suites' checks."""
    proc = WorkerProcess(
        kafka_bootstrap,
        tmp_path_factory.mktemp("signing-worker"),
        **rules_env(
            tmp_path_factory.mktemp("signing-rules"),
            spend_limit_yaml(SPEND_LIMIT_USD, "kill_switch"),
        ),
        SPENDFUSE_CONTROL_SIGNING_KEY=signing_spec,
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def control_topic(kafka_bootstrap: str) -> str:
    """The public topics, created as the worker creates them (control topic compacted)."""
    ensure_topics(Settings(bootstrap_servers=kafka_bootstrap))
    return topics.CONTROL


@pytest.fixture
def make_client(
    kafka_bootstrap: str, signer: Signer, control_topic: str
) -> Iterator[Callable[[], ControlClient]]:
    clients: list[ControlClient] = []

    def make() -> ControlClient:
        client = ControlClient(  # this suite's requests are all low-risk
            kafka_bootstrap, Verifier([signer.verify_key_spec()]), default_risk_tier="low"
        ).start(60, require_ready=True)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def publisher(kafka_bootstrap: str) -> Iterator[CostEventPublisher]:
    with CostEventPublisher(kafka_bootstrap) as pub:
        yield pub
