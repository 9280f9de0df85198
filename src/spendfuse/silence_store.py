"""Silences kept as a JSON file under the data dir (``<data_dir>/silences.json``).

Why a file rather than a compacted topic: creating a silence must work during an incident from
any shell that has the data dir — also with no broker reachable, for ``replay`` and
``backtest`` — and the notifier re-reads it cheaply (it is tiny). Writes go to a temporary file
then ``os.replace``, so a reader never sees half a file. A deployment with notifiers on several
hosts can swap this store for a compacted topic keyed by silence id: the pure model
(:mod:`spendfuse.rules.silences`) does not change.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from spendfuse.rules.silences import Silence


def silences_path(data_dir: Path) -> Path:
    return Path(data_dir) / "silences.json"


def load_silences(path: Path) -> list[Silence]:
    if not path.exists():
        return []
    return [Silence.model_validate(row) for row in orjson.loads(path.read_bytes())]


def save_silences(path: Path, silences: list[Silence]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_bytes(orjson.dumps([s.model_dump(mode="json") for s in silences],
                                 option=orjson.OPT_INDENT_2))  # fmt: skip
    os.replace(tmp, path)
