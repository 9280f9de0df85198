"""``spendfuse explain``: what is behind an alert (see :mod:`spendfuse.explain`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table


@click.command()
@click.argument("alert_id")
@click.option(
    "--bootstrap-servers",
    envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
    default=None,
    help="Read spendfuse.alerts and events.",
)
@click.option(
    "--alerts",
    "alerts_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="alerts.jsonl (from `spendfuse replay`) instead of the topic.",
)
@click.option(
    "--events",
    "events_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Events JSONL (a replayed file) instead of the topic.",
)
@click.option("--alerts-topic", default=None, help="Default: spendfuse.alerts.")
@click.option("--events-topic", default=None, help="Default: spendfuse.cost-events.")
def explain(
    alert_id: str,
    bootstrap_servers: str | None,
    alerts_file: Path | None,
    events_file: Path | None,
    alerts_topic: str | None,
    events_topic: str | None,
) -> None:
    """Print the events, the baseline and the rule behind ALERT_ID."""
    from spendfuse import explain as ex
    from spendfuse.settings import Settings

    console = Console(highlight=False)
    settings = Settings()
    if alerts_file is None and not bootstrap_servers:
        raise click.UsageError(
            "give --bootstrap-servers (or SPENDFUSE_BOOTSTRAP_SERVERS) or --alerts"
        )
    records = (
        ex.file_records(alerts_file)
        if alerts_file
        else ex.topic_records(bootstrap_servers, alerts_topic or ex.ALERTS)
    )  # type: ignore[arg-type]
    alert = ex.find_alert(records, alert_id)
    if alert is None:
        console.print(f"no alert {escape(alert_id)} found")
        sys.exit(1)
    ev = alert.evidence
    console.print(
        f"[bold]{escape(alert.rule)}[/] {alert.status} · {alert.severity.value} · "
        f"tenant {escape(alert.tenant_id)} · use case {escape(alert.use_case_id)}"
    )
    console.print(escape(alert.summary))
    console.print(
        f"fired {alert.fired_at.isoformat()}"
        + (f", resolved {alert.resolved_at.isoformat()}" if alert.resolved_at else "")
    )
    console.print(
        f"metric {escape(ev.metric)} = {ev.value:g}; threshold {ev.threshold}; "
        f"baseline {ev.baseline}; window {ev.window_s}s from {ev.window_start}"
    )
    if alert.actions_taken:
        console.print("commands: " + escape(", ".join(alert.actions_taken)))
    for t in ev.top_traces:
        console.print(f"top trace {escape(t.trace_id)}: ${t.cost_usd:.6g}")
    spec = ex.rule_spec(alert, settings.rules_dir, settings.rules_default_pack)
    console.print("[bold]rule[/]")
    console.print(
        escape(orjson.dumps(spec, option=orjson.OPT_INDENT_2).decode())
        if spec
        else "(not in the rule files: a built-in rule or detector)"
    )
    if not ev.sample_event_ids and not ev.top_traces:
        console.print("no sample events or traces recorded in this alert's evidence")
        return
    if events_file is not None:
        raw = ex.file_records(events_file)
    elif bootstrap_servers:
        raw = ex.topic_records(
            bootstrap_servers, events_topic or ex.COST_EVENTS, ex.events_since_ms(alert)
        )
    else:
        console.print("give --events FILE or --bootstrap-servers to print the events")
        return
    table = Table("event_time", "cost_event_id", "trace_id", "model", "cost_usd")
    for e in ex.matching_events(raw, alert):
        table.add_row(
            e.event_time.isoformat(),
            escape(e.cost_event_id),
            escape(e.trace_id or ""),
            escape(e.model_or_service or ""),
            f"{e.cost_usd:.6g}",
        )
    console.print(table)
