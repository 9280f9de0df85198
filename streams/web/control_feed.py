"""Feed the dashboard from the topics: every command (operator-issued ones included) and every
alert (the tenant stage's too, which the ingest hook does not see).

The control agent reads ``spendfuse.control`` without committing offsets (``acks=False``), so
each worker start re-reads the compacted topic from the beginning and the dashboard knows at
once which commands are in force, like a gateway does. Alerts are keyed by fingerprint and the
latest state wins, so an alert seen both here and through the ingest hook shows once.
"""

from __future__ import annotations

import logging

import faust
from pydantic import ValidationError

from spendfuse.dashboard_state import DashboardState
from spendfuse.schemas import topics
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode
from spendfuse.schemas.command import ControlCommand
from spendfuse.streams.metrics import default_metrics

log = logging.getLogger(__name__)


def register_control_feed(app: faust.App, state: DashboardState) -> None:
    control = app.topic(topics.CONTROL, key_serializer="raw", value_serializer="raw", acks=False)

    @app.agent(control, name="show_control_commands")
    async def show_control_commands(stream: faust.StreamT) -> None:
        async for value in stream:
            if value is None:  # a tombstone: compaction deleted the target's command
                continue
            try:
                state.add_command(decode(value, ControlCommand))
            except (ValidationError, ValueError) as exc:
                log.warning("control record not shown on the dashboard: %s", exc)
            except Exception:  # the dashboard must never stop the worker
                log.exception("control record not shown on the dashboard")
                default_metrics().record_worker_error("dashboard")


def register_alert_feed(app: faust.App, alerts_topic: faust.TopicT, state: DashboardState) -> None:
    @app.agent(alerts_topic, name="show_alerts")
    async def show_alerts(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                state.add_alert(decode(value, Alert))
            except (ValidationError, ValueError) as exc:
                log.warning("alert not shown on the dashboard: %s", exc)
            except Exception:  # the dashboard must never stop the worker
                log.exception("alert not shown on the dashboard")
                default_metrics().record_worker_error("dashboard")
