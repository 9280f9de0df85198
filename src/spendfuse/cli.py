"""The ``spendfuse`` command line (click, as Faust's own CLI)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
import orjson
from rich.console import Console

from spendfuse import __version__
from spendfuse.cli_rules import register as register_rules_commands
from spendfuse.control.operator_cli import register as register_operator_commands
from spendfuse.demo.cli import register as register_demo_commands
from spendfuse.settings import Settings

console = Console(stderr=True)


@click.group()
@click.version_option(__version__, prog_name="spendfuse")
def main() -> None:
    """Catch runaway AI spend in seconds and act on it."""


@main.command()
@click.option(
    "--bootstrap-servers",
    envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
    default=None,
    help="Kafka to use; by default a local broker is started (needs Java 17).",
)
def run(bootstrap_servers: str | None) -> None:
    """Run the service on embedded defaults: a local broker if none is configured, the worker."""
    from spendfuse.localkafka import LocalKafka, LocalKafkaError
    from spendfuse.streams.worker import run_worker

    settings = Settings()
    broker: LocalKafka | None = None
    if bootstrap_servers:
        settings = settings.model_copy(update={"bootstrap_servers": bootstrap_servers})
    elif not settings.bootstrap_servers:
        broker = LocalKafka(settings.data_dir / "kafka", partitions=settings.partitions)
        with console.status("Starting a local Kafka broker (first run fetches its jars)..."):
            try:
                servers = broker.start()
            except LocalKafkaError as exc:
                console.print(f"[red]Could not start the local broker:[/] {exc}")
                sys.exit(1)
        console.print(f"Local Kafka broker on [bold]{servers}[/] (data in {broker.workdir})")
        settings = settings.model_copy(update={"bootstrap_servers": servers})
    console.print(
        f"Worker consuming [bold]spendfuse.cost-events[/]; publish events with "
        f"`spendfuse publish FILE --bootstrap-servers {settings.bootstrap_servers}`. "
        "Alerts print here (no Slack token set). Ctrl-C stops."
    )
    try:
        run_worker(settings)
    finally:
        if broker is not None:
            broker.stop()


@main.command()
def worker() -> None:
    """Run only the worker, against SPENDFUSE_BOOTSTRAP_SERVERS."""
    from spendfuse.streams.worker import run_worker

    run_worker(Settings())


@main.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory for alerts.jsonl, commands.jsonl, dead_letters.jsonl, rollups.jsonl "
    "(and outcomes.json with --outcomes).",
)
@click.option(
    "--outcomes",
    "outcome_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="JSONL of outcome events (as published on spendfuse.outcomes): cost per successful "
    "outcome and ROI per use case go to outcomes.json.",
)
def replay(events: Path, out_dir: Path, outcome_file: Path | None) -> None:
    """Run the worker's decisions over EVENTS.jsonl, with no broker."""
    from spendfuse.replay import (
        iter_records,
        replay_records,
        write_outcomes,
        write_result,
        write_rollups,
    )
    from spendfuse.rules_runtime import build_pipeline

    settings = Settings()
    pipeline = build_pipeline(settings)
    outcomes = iter_records(outcome_file) if outcome_file else ()
    result = replay_records(iter_records(events), pipeline, outcomes=outcomes)
    write_result(result, out_dir)
    rollups = write_rollups(result, out_dir / "rollups.jsonl")
    if outcome_file:
        write_outcomes(result, out_dir / "outcomes.json")
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.outcomes.items()))
    click.echo(
        f"{counts}; {len(result.alerts)} alerts, {len(result.commands)} commands, "
        f"{rollups} hourly rollups -> {out_dir}"
    )


@main.command()
@click.argument("events", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--bootstrap-servers",
    envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
    required=True,
)
@click.option("--raw", is_flag=True, help="Send lines as they are, without validating them.")
def publish(events: Path, bootstrap_servers: str, raw: bool) -> None:
    """Publish cost events from a JSONL file to spendfuse.cost-events."""
    from spendfuse.producer import CostEventPublisher
    from spendfuse.replay import iter_records
    from spendfuse.schemas.errors import EventRejectedError

    sent = refused = 0
    login = Settings().kafka_client_config()  # SPENDFUSE_KAFKA_*: the producer's principal
    with CostEventPublisher(bootstrap_servers, config=login) as pub:
        for lineno, line in enumerate(iter_records(events), 1):
            if raw:
                pub.publish_raw(line)
                sent += 1
                continue
            try:
                pub.publish(orjson.loads(line))
                sent += 1
            except (EventRejectedError, orjson.JSONDecodeError) as exc:
                refused += 1
                console.print(f"[yellow]{events}:{lineno}[/] not sent: {exc}")
    click.echo(f"published {sent} events ({refused} refused) to {bootstrap_servers}")
    if refused:
        sys.exit(1)


from spendfuse.cli_explain import explain  # noqa: E402
from spendfuse.cli_report import report  # noqa: E402
from spendfuse.cli_simulate import simulate  # noqa: E402

main.add_command(simulate)
main.add_command(explain)
main.add_command(report)


register_operator_commands(main)
register_rules_commands(main)
register_demo_commands(main)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")


if __name__ == "__main__":
    _configure_logging()
    main()
