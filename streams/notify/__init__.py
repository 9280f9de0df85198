"""The notification path, shaped like Alertmanager's: ``dispatch`` (route, group, deliver,
record), ``inhibit`` and ``silence`` (what mutes an alert), and ``receivers/<name>`` (Slack,
console, webhook, PagerDuty). Pure routing, grouping and inhibition live in
:mod:`spendfuse.rules` (``routing``, ``grouping``, ``inhibition``, ``silences``)."""

from __future__ import annotations

import logging
import os
import threading

from spendfuse.rules.loader import load_rules
from spendfuse.rules.reload import RulesWatcher
from spendfuse.settings import Settings
from spendfuse.streams.notify.dispatch import Notifier, NotifyOptions, RetryPolicy
from spendfuse.streams.notify.metrics import NotifyMetrics
from spendfuse.streams.notify.topics import NotifyTopics

log = logging.getLogger(__name__)

__all__ = ["Notifier", "NotifyOptions", "NotifyTopics", "RetryPolicy", "run_notifier"]


def build_notifier(
    settings: Settings,
    topics: NotifyTopics | None = None,
    options: NotifyOptions | None = None,
    metrics: NotifyMetrics | None = None,
) -> Notifier:
    """A notifier over the rule files of ``settings`` (reloaded when ``rules_dir`` changes)."""
    ruleset = load_rules(settings.rules_dir, settings.rules_default_pack)
    watcher = (
        RulesWatcher(settings.rules_dir, settings.rules_default_pack)
        if settings.rules_dir is not None
        else None
    )
    return Notifier(
        settings.require_bootstrap(),
        settings,
        ruleset,
        topics=topics,
        options=options,
        watcher=watcher,
        environ=dict(os.environ),
        metrics=metrics,
    )


def run_notifier(settings: Settings) -> None:
    metrics = NotifyMetrics()
    if settings.notify_metrics_port:
        metrics.serve(settings.notify_metrics_port, settings.web_host)
    notifier = build_notifier(settings, metrics=metrics)
    stop = threading.Event()
    try:
        notifier.run(stop)
    except KeyboardInterrupt:
        stop.set()
