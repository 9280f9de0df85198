"""Build the rule engines from settings, for every path (worker, replay, backtest, notifier).

One place decides which rules run: the default pack (unless ``SPENDFUSE_RULES_DEFAULT_PACK`` is
false), ``SPENDFUSE_RULES_DIR`` merged on top, and the built-in spend-rate rule.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.loader import load_rules
from spendfuse.rules.routing import route
from spendfuse.rules.ruleset import RuleSet
from spendfuse.schemas.alert import Alert
from spendfuse.settings import Settings


def build_pipeline(settings: Settings, rules_dir: Path | None = None,
                   default_pack: bool | None = None) -> Pipeline:  # fmt: skip
    """The shared pipeline with both stages over one rule set (``rules_dir`` overrides)."""
    pack = settings.rules_default_pack if default_pack is None else default_pack
    ruleset = load_rules(rules_dir or settings.rules_dir, pack)
    engine = Engine(ruleset)
    book = None
    if settings.price_book_path is not None:
        from spendfuse.finops import load_price_book

        book = load_price_book(settings.price_book_path)
    return Pipeline(engine, settings.max_event_bytes, TenantEngine(ruleset),
                    max_record_bytes=settings.max_record_bytes, price_book=book)


@lru_cache(maxsize=1)
def _ruleset() -> RuleSet:
    settings = Settings()
    return load_rules(settings.rules_dir, settings.rules_default_pack)


def slack_router(alert: Alert) -> str:
    """``SPENDFUSE_SLACK_ROUTER=spendfuse.rules_runtime:slack_router``: the channel the rule
    files' route tree gives an alert (its first receiver with a Slack channel)."""
    for target in route(alert, _ruleset()):
        if target.channel:
            return target.channel
    return Settings().slack_channel
