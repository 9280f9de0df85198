"""Forecast-residual detector on river's ``time_series.HoltWinters``.

Why: spend has trend and (daily) seasonality; scoring the one-step-ahead forecast error instead
of the raw value keeps seasonal peaks from looking anomalous. The residual is turned into a score
with a rolling z-score of past residuals.
State: HoltWinters' level/trend/season deques and warm-up buffer are copied field by field;
the residual statistics are river ``Var`` internals plus the rolling window.
"""

from __future__ import annotations

from typing import Any

from river import time_series

from ._river_state import new_rolling_var, rolling_var_from_state, rolling_var_to_state
from ._scoring import safe_z, z_to_score
from .base import BaseDetector, Point, State, check_float, check_int, point_value
from .registry import register


class HoltWintersResidual(BaseDetector):
    name = "holt_winters"
    exact_restore = True

    def __init__(
        self,
        alpha: float = 0.1,
        beta: float = 0.01,
        gamma: float = 0.1,
        seasonality: int = 0,
        window_size: int = 1000,
        grace_period: int = 100,
    ) -> None:
        self.alpha = check_float("alpha", alpha, min_value=0.0, max_value=1.0, min_open=True)
        self.beta = check_float("beta", beta, min_value=0.0, max_value=1.0)
        self.gamma = check_float("gamma", gamma, min_value=0.0, max_value=1.0)
        self.seasonality = check_int("seasonality", seasonality, min_value=0)
        self.window_size = check_int("window_size", window_size, min_value=2)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self._reset()

    def _new_model(self) -> time_series.HoltWinters:
        return time_series.HoltWinters(
            alpha=self.alpha,
            beta=self.beta or None,
            gamma=self.gamma if self.seasonality else None,
            seasonality=self.seasonality,
        )

    def _reset(self) -> None:
        self._model = self._new_model()
        self._res = new_rolling_var(self.window_size)
        self._n = 0

    def _forecast(self) -> float | None:
        if not self._model._initialized:
            return None
        return float(self._model.forecast(horizon=1)[0])

    def score_one(self, x: Point) -> float:
        f = self._forecast()
        if f is None or self._n < self.grace_period or self._res.obj.mean.n < 2:
            return 0.0
        v = self._res.obj
        return z_to_score(safe_z(point_value(x) - f, v.mean.get(), v.get()))

    def learn_one(self, x: Point) -> None:
        y = point_value(x)
        f = self._forecast()
        if f is not None:
            self._res.update(y - f)
        try:
            self._model.learn_one(y)
        except ZeroDivisionError:
            # river seeds the seasonal terms as y / mean(first values): impossible when that
            # mean is 0 (e.g. a stream of zeros). Restart the warm-up on the next values.
            self._model = self._new_model()
        self._n += 1

    def _get_state(self) -> State:
        m = self._model
        return {
            "n": self._n,
            "initialized": m._initialized,
            "first_values": list(m._first_values),
            "level": list(m.level),
            "trend": list(m.trend) if m.trend is not None else None,
            "season": list(m.season) if m.season is not None else None,
            "residuals": rolling_var_to_state(self._res),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        m = self._new_model()
        m._initialized = bool(state["initialized"])
        m._first_values = [float(v) for v in state["first_values"]]
        m.level.extend(state["level"])
        if m.trend is not None:
            m.trend.extend(state["trend"] or [])
        if m.season is not None:
            m.season.extend(state["season"] or [])
        self._model = m
        self._n = int(state["n"])
        self._res = rolling_var_from_state(state["residuals"], self.window_size)


register(HoltWintersResidual.name, HoltWintersResidual)
