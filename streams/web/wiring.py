"""One call that gives a worker its operator surface: metrics, dashboard state, views, feeds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import faust

from spendfuse.control.signing import Verifier
from spendfuse.dashboard_state import DashboardConfig, DashboardState
from spendfuse.rules.ruleset import RuleSet
from spendfuse.settings import Settings
from spendfuse.silence_store import silences_path
from spendfuse.streams.metrics import default_metrics
from spendfuse.streams.observer import IngestObserver
from spendfuse.streams.web.control_feed import register_alert_feed, register_control_feed
from spendfuse.streams.web.health import register_lag_timer
from spendfuse.streams.web.views import WebContext, register_web


def attach_operator_web(
    app: faust.App,
    settings: Settings,
    topic_map: dict[str, faust.TopicT],
    signer: Any = None,
    rules: Callable[[], RuleSet | None] | None = None,
) -> IngestObserver:
    """Register the dashboard, ``/metrics``, health, the alert and control feeds, the lag timer.

    ``rules`` gives the running rule set (reloads included): the dashboard shows its budgets.
    Returns the observer the ingest handler reports to.
    """
    metrics = default_metrics()
    verifier = Verifier([signer.verify_key_spec()]) if signer is not None else None
    config = DashboardConfig(
        daily_budget_usd=settings.dashboard.daily_budget_usd,
        monthly_budget_usd=settings.dashboard.monthly_budget_usd,
    )
    state = DashboardState(config, verifier, rules)
    register_control_feed(app, state, signer)
    register_alert_feed(app, topic_map["alerts"], state)
    register_lag_timer(app, metrics)
    if settings.web_enabled:
        register_web(
            app,
            WebContext(
                state,
                metrics,
                settings.dashboard.token,
                topic_map["control"],
                signer,
                silences_path(settings.data_dir),
            ),
        )
    return IngestObserver(metrics, state)
