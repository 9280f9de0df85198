"""The notifier's Prometheus metrics, in its own registry, served on its own port.

Labels are bounded: receiver names and kinds come from the rule files, reasons are short codes
(``ratelimited``, ``http_503``, ``channel_not_found``, ``connection``...).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_DELAY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class NotifyMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.delivery_errors = Counter(
            "spendfuse_notify_delivery_errors",
            "Failed delivery attempts (each is retried with backoff), by receiver and reason.",
            ["receiver", "integration", "reason"],
            registry=r,
        )
        self.slack_delivery_errors = Counter(
            "spendfuse_slack_delivery_errors",
            "Failed Slack delivery attempts, by reason.",
            ["reason"],
            registry=r,
        )
        self.notifications = Counter(
            "spendfuse_notify_notifications",
            "Notifications delivered, by receiver and kind.",
            ["receiver", "integration", "kind"],
            registry=r,
        )
        self.delivery_seconds = Histogram(
            "spendfuse_notify_delivery_seconds",
            "From an alert's record on spendfuse.alerts to its receiver taking it "
            "(group_wait included).",
            ["integration"],
            buckets=_DELAY_BUCKETS_S,
            registry=r,
        )
        self.open_groups = Gauge(
            "spendfuse_notify_open_groups",
            "Groups in the delivery ledger (open incidents).",
            registry=r,
        )
        self.bad_records = Counter(
            "spendfuse_notify_bad_records",
            "Records skipped as unreadable, by source (alerts, silences, silences_file, ledger).",
            ["source"],
            registry=r,
        )

    def record_error(self, receiver: str, integration: str, reason: str) -> None:
        self.delivery_errors.labels(receiver, integration, reason).inc()
        if integration == "slack":
            self.slack_delivery_errors.labels(reason).inc()

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)
