"""``spendfuse report``: showback and chargeback per period, in FOCUS columns, CSV and Parquet."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from rich.console import Console

if TYPE_CHECKING:
    import pyarrow as pa

    from spendfuse.finops.report import Kind, Period

console = Console(stderr=True)


TOPIC_SEEK_MARGIN = timedelta(days=1)
"""With ``--start``, the topic is read from a day before it (by record time): a rollup is
published after its hour, so nothing for an hour from ``--start`` on is older than that unless
its producer's clock ran a day behind event time."""
_CHUNK_BYTES = 4 << 20


def iter_rollups_topic(
    bootstrap_servers: str, topic: str, since: datetime | None = None, timeout_s: float = 30.0
) -> Iterator[bytes]:
    """The rollups topic up to its end as of now, as JSONL chunks of about 4 MB; from ``since``
    minus :data:`TOPIC_SEEK_MARGIN` when given.

    The topic is compacted by rollup key and a record published again for a key carries that
    key's full totals, so only the latest record of each key counts (compaction may not have
    removed the older ones yet). Memory holds the latest record of each key read; records
    without a key are taken as they are."""
    latest: dict[bytes, bytes] = {}
    chunk: list[bytes] = []
    size = 0
    for key, value in _topic_records(bootstrap_servers, topic, since, timeout_s):
        if key is not None:
            latest[key] = value
            continue
        chunk.append(value)
        size += len(value)
        if size >= _CHUNK_BYTES:
            yield b"\n".join(chunk)
            chunk, size = [], 0
    for value in latest.values():
        chunk.append(value)
        size += len(value)
        if size >= _CHUNK_BYTES:
            yield b"\n".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"\n".join(chunk)


def _topic_records(
    bootstrap_servers: str, topic: str, since: datetime | None, timeout_s: float
) -> Iterator[tuple[bytes | None, bytes]]:
    """(key, value) of every record with a value, partition by partition up to the end."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

    conf = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": "spendfuse-report",
        "enable.auto.commit": False,
    }
    consumer = Consumer(conf)
    try:
        meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise click.ClickException(f"topic {topic} not found on {bootstrap_servers}")
        starts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        if since is not None:
            ms = int((since - TOPIC_SEEK_MARGIN).timestamp() * 1000)
            wanted = [TopicPartition(topic, p, ms) for p in meta.partitions]
            starts = consumer.offsets_for_times(wanted, timeout=timeout_s)
        ends: dict[int, int] = {}
        for tp in starts:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout_s)
            first = low if tp.offset < 0 else tp.offset  # no record after `since`: offset -1
            if high > first and not (since is not None and tp.offset < 0):
                ends[tp.partition] = high
        consumer.assign([tp for tp in starts if tp.partition in ends])
        deadline = time.monotonic() + timeout_s
        while ends:
            if time.monotonic() > deadline:
                raise click.ClickException(f"timed out reading {topic}")
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            if msg.error():
                raise click.ClickException(f"reading {topic}: {msg.error()}")
            if msg.value():
                yield msg.key(), msg.value()
            if msg.offset() + 1 >= ends.get(msg.partition(), 0):
                ends.pop(msg.partition(), None)
            deadline = time.monotonic() + timeout_s
    except KafkaException as exc:
        raise click.ClickException(f"cannot read {topic} from {bootstrap_servers}: {exc}") from exc
    finally:
        consumer.close()


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


@click.command()
@click.option(
    "--rollups",
    "rollup_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL file of hourly rollup records (repeatable).",
)
@click.option(
    "--events",
    "event_files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="JSONL cost events (as published); priced and rolled up on the fly.",
)
@click.option("--from-kafka", is_flag=True, help="Read the rollups topic (to its current end).")
@click.option(
    "--bootstrap-servers",
    envvar=["SPENDFUSE_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"],
    default=None,
)
@click.option("--topic", default=None, help="Rollups topic (default: spendfuse.cost-rollups).")
@click.option(
    "--period", type=click.Choice(["day", "month", "quarter"]), default="month", show_default=True
)
@click.option(
    "--kind",
    type=click.Choice(["showback", "chargeback", "both"]),
    default="both",
    show_default=True,
)
@click.option(
    "--allocation",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML rules allocating shared costs (GPU pool, vector DB, platform...).",
)
@click.option(
    "--price-book",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Price book for --events (default: SPENDFUSE_PRICE_BOOK_PATH).",
)
@click.option("--start", default=None, help="Only hours from this UTC time (RFC 3339 or date).")
@click.option("--end", default=None, help="Only hours before this UTC time.")
@click.option(
    "--format",
    "formats",
    type=click.Choice(["csv", "parquet", "both"]),
    default="both",
    show_default=True,
)
@click.option(
    "--billing-account",
    default="spendfuse",
    show_default=True,
    help="BillingAccountId of the rows (the internal ledger).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Writes <kind>_<period>.csv / .parquet here.",
)
def report(
    rollup_files: tuple[Path, ...],
    event_files: tuple[Path, ...],
    from_kafka: bool,
    bootstrap_servers: str | None,
    topic: str | None,
    period: str,
    kind: str,
    allocation: Path | None,
    price_book: Path | None,
    start: str | None,
    end: str | None,
    formats: str,
    billing_account: str,
    out_dir: Path,
) -> None:
    """Showback and chargeback per period from hourly rollups, in FOCUS 1.2 columns."""
    from spendfuse.finops import focus
    from spendfuse.finops.allocation import load_allocation_rules
    from spendfuse.finops.errors import FinopsError
    from spendfuse.finops.pricebook import load_price_book
    from spendfuse.finops.report import aggregate_periods, rows_for
    from spendfuse.finops.sources import read_rollups_file, rollups_from_events, rollups_from_jsonl
    from spendfuse.replay import iter_records
    from spendfuse.schemas.topics import COST_ROLLUPS
    from spendfuse.settings import Settings

    if not (rollup_files or event_files or from_kafka):
        raise click.UsageError("give --rollups FILE, --events FILE or --from-kafka")
    try:
        rules = load_allocation_rules(allocation) if allocation else None
        blocks: list[Iterable[pa.Table]] = [read_rollups_file(p) for p in rollup_files]
        book_path = price_book or Settings().price_book_path
        book = load_price_book(book_path) if book_path and event_files else None
        for path in event_files:
            replay = rollups_from_events(iter_records(path), book)
            blocks.append([replay.table])
            console.print(
                f"{path}: {replay.accepted} events ({replay.unpriced} unpriced), "
                f"{replay.duplicates} duplicates, {replay.refused} refused"
            )
        if from_kafka:
            if not bootstrap_servers:
                raise click.UsageError("--from-kafka needs --bootstrap-servers")
            name = topic or COST_ROLLUPS
            chunks = iter_rollups_topic(bootstrap_servers, name, _when(start))
            blocks.append(rollups_from_jsonl(chunk, name) for chunk in chunks)
        the_period = cast("Period", period)
        periods = aggregate_periods(chain(*blocks), the_period, _when(start), _when(end))
        out_dir.mkdir(parents=True, exist_ok=True)
        for k in ["showback", "chargeback"] if kind == "both" else [kind]:
            rows = rows_for(periods, the_period, cast("Kind", k), rules)
            result = focus.focus_table(rows, k, period, billing_account)
            _write(result, out_dir / f"{k}_{period}", formats)
            _summarize(k, rows)
    except FinopsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _write(table: pa.Table, stem: Path, formats: str) -> None:
    from spendfuse.finops import focus

    if formats in ("csv", "both"):
        focus.write_csv(table, stem.with_suffix(".csv"))
    if formats in ("parquet", "both"):
        focus.write_parquet(table, stem.with_suffix(".parquet"))


def _summarize(kind: str, rows: list[dict[str, Any]]) -> None:
    total = sum(r["cost_usd"] for r in rows)
    unallocated = sum(r["cost_usd"] for r in rows if r["cost_type"] == "unallocated")
    unpriced = sum(r["unpriced_events"] or 0 for r in rows)
    click.echo(
        f"{kind}: {len(rows)} rows, ${total:,.2f} (unallocated ${unallocated:,.2f}), "
        f"{unpriced} unpriced events"
    )
