"""Prometheus metrics of a gateway's control client: readiness, state age, restarts, fail-mode
answers and record outcomes, read from :meth:`ControlClient.stats` at scrape time.

    from prometheus_client import REGISTRY
    from spendfuse.gateway.metrics import register
    register(client, REGISTRY)

Collected on scrape (a custom collector), so ``decide`` pays nothing for them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from spendfuse.gateway.client import ControlClient


class ControlClientCollector(Collector):
    def __init__(self, client: ControlClient) -> None:
        self.client = client

    def collect(self) -> Iterator[Any]:
        stats = self.client.stats()
        ready = GaugeMetricFamily(
            "spendfuse_gateway_ready",
            "1 when the control state is loaded and fresh.",
            labels=["fail_mode"],
        )
        ready.add_metric([stats["fail_mode"]], 1.0 if stats["ready"] else 0.0)
        yield ready
        age = stats["state_age_s"]
        yield GaugeMetricFamily(
            "spendfuse_gateway_state_age_seconds",
            "Seconds since the broker last confirmed the control state (-1 before the first load).",
            value=age if age != float("inf") else -1.0,
        )
        yield GaugeMetricFamily(
            "spendfuse_gateway_commands_in_force",
            "Commands in force.",
            value=stats["commands_in_force"],
        )
        health = CounterMetricFamily(
            "spendfuse_gateway_health_events",
            "Consumer restarts, failed broker checks, load retries and fail-mode answers.",
            labels=["event"],
        )
        for name, count in sorted(stats["health"].items()):
            health.add_metric([name], count)
        yield health
        records = CounterMetricFamily(
            "spendfuse_gateway_control_records", "Control records by outcome.", labels=["outcome"]
        )
        for name, count in sorted(stats["records"].items()):
            records.add_metric([name], count)
        yield records


def register(client: ControlClient, registry: CollectorRegistry) -> ControlClientCollector:
    collector = ControlClientCollector(client)
    registry.register(collector)
    return collector
