"""Run the worker: create topics, build the app, hand over to Faust's worker."""

from __future__ import annotations

import logging

from faust import Worker

from spendfuse.settings import Settings
from spendfuse.streams.app import create_app
from spendfuse.streams.topics import ensure_topics

log = logging.getLogger(__name__)


def run_worker(settings: Settings) -> None:
    ensure_topics(settings)
    built = create_app(settings)
    log.info("spendfuse worker settings: %s", settings.masked())
    worker = Worker(built.app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
