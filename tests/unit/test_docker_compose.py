"""docker-compose.yml cannot run here; keep it valid and wired."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_services_and_wiring() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"kafka", "spendfuse", "notifier"}
    notifier = services["notifier"]
    assert notifier["command"] == ["notify"]
    assert notifier["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert notifier["environment"]["SPENDFUSE_CONSOLE_ALERTS"] == "true"
    kafka, worker = services["kafka"], services["spendfuse"]
    assert "healthcheck" in kafka and "healthcheck" in worker
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert worker["depends_on"]["kafka"]["condition"] == "service_healthy"
    internal = next(
        url.split("://")[1]
        for url in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"].split(",")
        if url.startswith("INTERNAL://")
    )
    assert worker["environment"]["SPENDFUSE_BOOTSTRAP_SERVERS"] == internal
    assert (ROOT / "Dockerfile").exists()
    assert "spendfuse" in (ROOT / "Dockerfile").read_text()


def test_compose_publishes_kafka_and_the_dashboard_on_loopback_only() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = [port for svc in services.values() for port in svc.get("ports", [])]
    assert published, "the dashboard and the broker are reachable from the host"
    assert all(str(port).startswith("127.0.0.1:") for port in published), published
    assert "SPENDFUSE_DASHBOARD__TOKEN" not in services["spendfuse"]["environment"]


def _acl_lines(script: str) -> set[tuple[str, str, str, str, str]]:
    """(principal, resource type, name, pattern, operation) from the `acl ...` lines."""
    kinds = {"--topic": "TOPIC", "--group": "GROUP", "--transactional-id": "TRANSACTIONAL_ID"}
    found = set()
    for line in script.splitlines():
        words = line.split()
        if not words or words[0] != "acl":
            continue
        pairs = list(zip(words[1::2], words[2::2], strict=True))
        principal = next(v for k, v in pairs if k == "--allow-principal")
        pattern = "PREFIXED" if ("--resource-pattern-type", "prefixed") in pairs else "LITERAL"
        ops = [v.upper() for k, v in pairs if k == "--operation"]
        for k, name in pairs:
            if k in kinds:
                found |= {(principal, kinds[k], name, pattern, op) for op in ops}
    return found


def test_sasl_override_matches_the_broker_the_tests_run() -> None:
    """docker-compose.sasl.yml sets the broker properties and ACLs that `LocalKafka(sasl=...)`
    sets (a real-broker test checks those); only the listener names differ."""
    from spendfuse.localkafka.security import KafkaPrincipals, acl_bindings, server_properties

    services = yaml.safe_load((ROOT / "docker-compose.sasl.yml").read_text())["services"]
    env = services["kafka"]["environment"]
    props = {k[6:].lower().replace("_", "."): v for k, v in env.items() if k.startswith("KAFKA_")}
    roles = {r: {r: "pw"} for r in ("worker", "operator", "gateway", "producer")}
    principals = KafkaPrincipals(
        workers=roles["worker"],
        operators=roles["operator"],
        gateways=roles["gateway"],
        producers=roles["producer"],
        mechanism="PLAIN",
    )
    local = server_properties(principals)
    shared = {k for k in local if not k.startswith(("listener", "inter.broker"))}
    assert {k: props[k] for k in shared} == {k: local[k] for k in shared}
    protocols = dict(p.split(":") for p in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}
    for listener in protocols:
        jaas = props[f"listener.name.{listener.lower()}.plain.sasl.jaas.config"]
        assert all(f"user_{user}=" in jaas for user in ["broker", *roles])

    script = services["kafka-acls"]["command"][0]
    expected = {
        (b.principal, b.restype.name, b.name, b.resource_pattern_type.name, b.operation.name)
        for b in acl_bindings(principals)
    }
    assert _acl_lines(script) == expected
    for svc in ("spendfuse", "notifier"):
        assert services[svc]["environment"]["SPENDFUSE_KAFKA_SASL_USERNAME"] == "worker"
        assert services[svc]["depends_on"]["kafka-acls"]["condition"] == (
            "service_completed_successfully"
        )
