"""``spendfuse simulate``: write (or publish in real time) a labelled cost-event stream."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import orjson
from rich.progress import Progress

from spendfuse.simulate import default_fleet, default_incidents, random_scenario, simulate_fleet


def _parse_start(value: str | None) -> datetime:
    if value is None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return today - timedelta(days=today.weekday())  # this week's Monday
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Writes events.jsonl and labels.json here.",
)
@click.option("--days", type=float, default=7.0, show_default=True)
@click.option("--start", default=None, help="RFC 3339 start (default: this week's Monday).")
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--no-incidents", is_flag=True, help="Normal traffic only.")
@click.option(
    "--random-fleet",
    is_flag=True,
    help="A fleet and incidents drawn from --seed (busy and thin use cases, weekend patterns, "
    "ramps, new use cases) instead of the default six; it picks its own start.",
)
def simulate(
    out_dir: Path,
    days: float,
    start: str | None,
    seed: int,
    no_incidents: bool,
    random_fleet: bool,
) -> None:
    """Write a realistic fleet's cost events with injected incidents and their labels."""
    begin = _parse_start(start)
    fleet = default_fleet()
    incidents = [] if no_incidents else default_incidents(begin, max(int(days), 1))
    labels = [i.label() for i in incidents]
    if random_fleet:
        scenario = random_scenario(seed, days)
        begin, fleet = scenario.start, scenario.fleet
        incidents = [] if no_incidents else scenario.incidents
        labels = [] if no_incidents else scenario.labels()
    out_dir.mkdir(parents=True, exist_ok=True)
    minutes = int(days * 24 * 60)
    n = 0
    with (out_dir / "events.jsonl").open("wb") as fh, Progress(transient=True) as progress:
        task = progress.add_task("simulating", total=minutes)
        last_minute = None
        for event in simulate_fleet(fleet, begin, timedelta(days=days), incidents, seed):
            fh.write(orjson.dumps(event) + b"\n")
            n += 1
            minute = event["event_time"][:16]
            if minute != last_minute:
                progress.advance(task)
                last_minute = minute
    (out_dir / "labels.json").write_bytes(orjson.dumps(labels, option=orjson.OPT_INDENT_2))
    click.echo(f"{n} events, {len(labels)} labelled incidents -> {out_dir}")


def publish_realtime(
    bootstrap_servers: str, minutes: float, speed: float, seed: int, loop_after_s: float
) -> None:
    """Publish simulated traffic paced to the wall clock (``speed`` x real time)."""
    from spendfuse.producer import CostEventPublisher
    from spendfuse.simulate import Incident

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    loop = Incident(
        "runaway_loop",
        "research-agent",
        now + timedelta(seconds=loop_after_s),
        timedelta(minutes=10),
    )
    wall0 = time.monotonic()
    with CostEventPublisher(bootstrap_servers) as pub:
        for event in simulate_fleet(default_fleet(), now, timedelta(minutes=minutes), [loop], seed):
            at = datetime.fromisoformat(event["event_time"].replace("Z", "+00:00"))
            delay = (at - now).total_seconds() / speed - (time.monotonic() - wall0)
            if delay > 0:
                time.sleep(delay)
            pub.publish(event)
