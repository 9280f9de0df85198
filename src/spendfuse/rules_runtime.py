"""Build the pipeline from settings, for every path (worker, replay, backtest).

One place decides which rules run: the default pack (unless ``SPENDFUSE_RULES_DEFAULT_PACK`` is
false) with ``SPENDFUSE_RULES_DIR`` merged on top, and which price book prices events.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from spendfuse.finops.rollups import RollupPolicy
from spendfuse.pipeline import Pipeline
from spendfuse.rules.engine import Engine, TenantEngine
from spendfuse.rules.loader import load_rules
from spendfuse.settings import Settings


def build_pipeline(
    settings: Settings, rules_dir: Path | None = None, default_pack: bool | None = None
) -> Pipeline:
    """The shared pipeline with both stages over one rule set (``rules_dir`` overrides)."""
    pack = settings.rules_default_pack if default_pack is None else default_pack
    ruleset = load_rules(rules_dir or settings.rules_dir, pack)
    engine = Engine(ruleset)
    book = None
    if settings.price_book_path is not None:
        from spendfuse.finops import load_price_book

        book = load_price_book(settings.price_book_path)
    return Pipeline(
        engine,
        settings.max_event_bytes,
        TenantEngine(ruleset),
        max_record_bytes=settings.max_record_bytes,
        price_book=book,
        rollup_policy=RollupPolicy(
            lateness=timedelta(seconds=settings.rollup_lateness_s),
            keep=timedelta(hours=settings.rollup_keep_h),
        ),
        outcome_retention=timedelta(hours=settings.outcome_retention_h),
        outcome_ledger=settings.outcome_ledger,
        max_state_bytes=settings.state_max_bytes,
    )
