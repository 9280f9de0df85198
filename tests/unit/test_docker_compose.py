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
