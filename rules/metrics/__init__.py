"""The metric catalog and the per-use-case windowed aggregates rules are evaluated on."""

from spendfuse.rules.metrics.aggregates import AggregateView, update_aggregates
from spendfuse.rules.metrics.baselines import (
    BaselineProvider,
    RollingMeanBaseline,
    ScoreProvider,
    ZScoreFromHourly,
)
from spendfuse.rules.metrics.catalog import METRICS, WINDOWS, Metric, parse_extensions

__all__ = [
    "METRICS",
    "WINDOWS",
    "AggregateView",
    "BaselineProvider",
    "Metric",
    "RollingMeanBaseline",
    "ScoreProvider",
    "ZScoreFromHourly",
    "parse_extensions",
    "update_aggregates",
]
