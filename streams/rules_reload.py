"""Reload rule files in a running worker: a Faust timer around :class:`RulesWatcher`."""

from __future__ import annotations

import logging

import faust

from spendfuse.pipeline import Pipeline
from spendfuse.rules.reload import RulesWatcher
from spendfuse.settings import Settings
from spendfuse.streams.metrics import default_metrics

log = logging.getLogger(__name__)


def register_rules_reload(app: faust.App, pipeline: Pipeline, settings: Settings) -> None:
    if settings.rules_dir is None:
        return
    watcher = RulesWatcher(settings.rules_dir, settings.rules_default_pack)

    @app.timer(settings.rules_reload_s, name="reload_rules")
    async def reload_rules() -> None:
        try:
            result = watcher.poll()
        except Exception:  # an unreadable directory, a bug: the running rules keep running
            log.exception(
                "could not poll rules in %s; previous rules keep running", settings.rules_dir
            )
            default_metrics().record_worker_error("rules_reload")
            return
        if result.errors:
            log.error(
                "rules in %s refused, previous rules keep running:\n%s",
                settings.rules_dir,
                "\n".join(str(i) for i in result.errors),
            )
        if result.ruleset is not None:
            pipeline.engine.swap(result.ruleset)
            if pipeline.tenant_engine is not None:
                pipeline.tenant_engine.swap(result.ruleset)
            log.warning(
                "rules reloaded from %s: %d rules", settings.rules_dir, len(result.ruleset.rules)
            )
