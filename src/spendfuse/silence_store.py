"""Silences kept as a JSON file under the data dir (``<data_dir>/silences.json``), and shared.

The file lets a silence be created during an incident from any shell that has the data dir, also
with no broker reachable (``replay``, ``backtest``). Writes go to a temporary file then
``os.replace``, so a reader never sees half a file. Notifier replicas share silences through the
compacted ``spendfuse.silences`` topic (:mod:`spendfuse.streams.notify.silence`): the CLI
publishes there too when a broker is configured, and each notifier publishes the file's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from spendfuse.rules.silences import Silence

SILENCES_TOPIC = "spendfuse.silences"


def silences_path(data_dir: Path) -> Path:
    return Path(data_dir) / "silences.json"


def load_silences(path: Path) -> list[Silence]:
    if not path.exists():
        return []
    return [Silence.model_validate(row) for row in orjson.loads(path.read_bytes())]


def read_silences_lenient(path: Path) -> tuple[list[Silence], list[str]]:
    """The valid silences of a file, and one message per thing wrong with it; never raises
    (the notifier must keep running on a hand-edited, truncated or foreign file)."""
    try:
        if not path.exists():
            return [], []
        rows = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        return [], [f"unreadable: {exc}"]
    if not isinstance(rows, list):
        return [], ["not a JSON list of silences"]
    good, errors = [], []
    for i, row in enumerate(rows):
        try:
            good.append(Silence.model_validate(row))
        except (ValidationError, ValueError, TypeError) as exc:
            errors.append(f"silence #{i} skipped: {str(exc).splitlines()[0]}")
    return good, errors


def save_silences(path: Path, silences: list[Silence]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(
        orjson.dumps([s.model_dump(mode="json") for s in silences], option=orjson.OPT_INDENT_2)
    )
    os.replace(tmp, path)


def publish_silences(
    bootstrap: str,
    silences: list[Silence],
    topic: str = SILENCES_TOPIC,
    timeout_s: float = 15.0,
    config: dict[str, Any] | None = None,
) -> bool:
    """Share silences with every notifier replica; False if the broker did not take them."""
    from confluent_kafka import Producer

    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, **(config or {})}
    )
    for s in silences:
        producer.produce(topic, key=s.id.encode(), value=orjson.dumps(s.model_dump(mode="json")))
    return producer.flush(timeout_s) == 0


def share_if_configured(silences: list[Silence]) -> str:
    """Publish to the silences topic when a broker is configured; a line saying what happened."""
    from spendfuse.settings import Settings

    settings = Settings()
    bootstrap = settings.bootstrap_servers
    if not bootstrap:
        return "kept in the data dir (no broker configured; notifiers publish it from there)"
    if publish_silences(bootstrap, silences, config=settings.kafka_client_config()):
        return f"shared with every notifier on {SILENCES_TOPIC}"
    return f"NOT shared: {bootstrap} did not take it; notifiers publish it from the data dir"
