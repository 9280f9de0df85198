"""Silences shared by every notifier replica through a compacted topic keyed by silence id.

Each replica tails the topic, so all of them mute the same alerts. ``spendfuse silence add``
publishes there when a broker is configured, and each notifier also publishes what it finds in
``<data dir>/silences.json`` (written by the CLI without a broker, and by the dashboard): new
silences, and expiries (a shorter ``ends_at``); a silence is never lengthened that way. Silences
that ended a day ago are tombstoned. A malformed file or record is logged and counted, and the
last good silences stay in force: it never stops the notifier.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import orjson
from confluent_kafka import Producer
from pydantic import ValidationError

from spendfuse.rules.silences import Silence
from spendfuse.silence_store import read_silences_lenient

log = logging.getLogger(__name__)
FORGET_AFTER = timedelta(days=1)


class SilenceBook:
    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.silences: dict[str, Silence] = {}
        self.bad = 0

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """One record of the silences topic (a tombstone removes)."""
        if key is None:
            self.bad += 1
            return
        if value is None:
            self.silences.pop(key.decode(errors="replace"), None)
            return
        try:
            silence = Silence.model_validate(orjson.loads(value))
        except (orjson.JSONDecodeError, ValidationError, ValueError) as exc:
            self.bad += 1
            log.warning("silence record %r skipped: %s", key[:80], exc)
            return
        self.silences[silence.id] = silence

    def active(self) -> list[Silence]:
        return list(self.silences.values())

    def sync_file(self, path: Path, producer: Producer, now: datetime) -> int:
        """Publish the file's new silences and expiries; how many. Bad files change nothing."""
        found, errors = read_silences_lenient(path)
        for error in errors:
            self.bad += 1
            log.error("%s: %s (the notifier keeps the silences it has)", path, error)
        sent = 0
        for silence in found:
            known = self.silences.get(silence.id)
            if silence.ends_at <= now and known is None:
                continue  # over before we saw it: nothing to mute
            if known is None or silence.ends_at < known.ends_at:
                publish_silence(producer, self.topic, silence)
                self.silences[silence.id] = silence
                sent += 1
        return sent

    def forget_ended(self, producer: Producer, now: datetime) -> None:
        for sid, silence in list(self.silences.items()):
            if silence.ends_at + FORGET_AFTER < now:
                producer.produce(self.topic, key=sid.encode(), value=None)
                del self.silences[sid]


def publish_silence(producer: Producer, topic: str, silence: Silence) -> None:
    value = orjson.dumps(silence.model_dump(mode="json"))
    producer.produce(topic, key=silence.id.encode(), value=value)
