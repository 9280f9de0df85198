"""The ``spendfuse demo`` command (what ``make run`` runs)."""

from __future__ import annotations

import click


def register(main: click.Group) -> None:
    @main.command()
    @click.option(
        "--bootstrap-servers",
        envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
        default=None,
        help="Kafka to use; by default a local broker is started (needs Java 17).",
    )
    def demo(bootstrap_servers: str | None) -> None:
        """Broker, worker, dashboard and simulated traffic: watch a runaway loop get stopped."""
        from spendfuse.demo.runner import run_demo
        from spendfuse.settings import Settings

        settings = Settings()
        if bootstrap_servers:
            settings = settings.model_copy(update={"bootstrap_servers": bootstrap_servers})
        run_demo(settings)
