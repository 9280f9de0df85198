"""Feed the dashboard from the topics: every command (operator-issued ones included), every
alert (the tenant stage's too, which the ingest hook does not see) and every hourly rollup.

The control agent reads ``spendfuse.control`` without committing offsets (``acks=False``), so
each worker start re-reads the compacted topic from the beginning and the dashboard knows at
once which commands are in force, like a gateway does. A record shows only if its signature
verifies with the worker's key (:meth:`DashboardState.add_control_record`); each verified
command's version is handed to the worker's signer, so its next command on that key is newer
even if another publisher's clock runs ahead. Alerts are keyed by fingerprint and the
latest state wins, so an alert seen both here and through the ingest hook shows once.

The rollup agent reads ``spendfuse.cost-rollups`` the same way (never committing, so from the
start of the compacted topic on every start): the dashboard's budget spend and showback sum the
latest row per key, so a restarted worker shows the spend counted before the restart. A row also
reaches the dashboard as the worker publishes it; the topic's copy of the same key replaces it
with the same totals, and the records of a key share a partition and are read in publish order,
so the latest row wins.
"""

from __future__ import annotations

import logging
from typing import Any

import faust
from pydantic import ValidationError

from spendfuse.control.signing import signature_header
from spendfuse.dashboard_state import DashboardState
from spendfuse.schemas import topics
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode
from spendfuse.schemas.rollup import CostRollup

log = logging.getLogger(__name__)


def register_control_feed(app: faust.App, state: DashboardState, signer: Any = None) -> None:
    control = app.topic(topics.CONTROL, key_serializer="raw", value_serializer="raw", acks=False)

    @app.agent(control, name="show_control_commands")
    async def show_control_commands(stream: faust.StreamT) -> None:
        async for event in stream.events():
            message = event.message
            outcome, command = state.add_control_record(
                message.key, message.value, signature_header(message.headers)
            )
            if command is not None and signer is not None:
                signer.observe(command.key(), command.order())
            elif outcome not in ("shown", "tombstone"):
                log.warning("control record %r not shown on dashboard: %s", message.key, outcome)


def register_alert_feed(app: faust.App, alerts_topic: faust.TopicT, state: DashboardState) -> None:
    @app.agent(alerts_topic, name="show_alerts")
    async def show_alerts(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                state.add_alert(decode(value, Alert))
            except (ValidationError, ValueError) as exc:
                log.warning("alert not shown on the dashboard: %s", exc)


def register_rollup_feed(app: faust.App, state: DashboardState) -> None:
    rollups = app.topic(
        topics.COST_ROLLUPS, key_serializer="raw", value_serializer="raw", acks=False
    )

    @app.agent(rollups, name="show_rollups")
    async def show_rollups(stream: faust.StreamT) -> None:
        async for value in stream:
            if value is None:
                continue  # a tombstone: nothing to sum
            try:
                state.add_rollups([decode(value, CostRollup)])
            except (ValidationError, ValueError) as exc:
                log.warning("rollup not shown on the dashboard: %s", exc)
