"""Rolling Gaussian z-score (river ``stats.Var`` over ``utils.Rolling``).

Why: the simplest credible baseline -- "how many standard deviations from the recent mean" --
and a sanity check for the harness. It misses contextual anomalies and is fooled by heavy tails.
State: the rolling window values plus river ``Var``'s exact internals (n, mean, M2).
"""

from __future__ import annotations

from typing import Any

from ._river_state import new_rolling_var, rolling_var_from_state, rolling_var_to_state
from ._scoring import safe_z, z_to_score
from .base import BaseDetector, Point, State, check_int, point_value
from .registry import register


class RollingZScore(BaseDetector):
    name = "zscore"
    exact_restore = True

    def __init__(self, window_size: int = 1000, grace_period: int = 50) -> None:
        self.window_size = check_int("window_size", window_size, min_value=2)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self._reset()

    def _reset(self) -> None:
        self._var = new_rolling_var(self.window_size)
        self._n = 0

    def score_one(self, x: Point) -> float:
        if self._n < max(self.grace_period, 2):
            return 0.0
        v = self._var.obj
        return z_to_score(safe_z(point_value(x), v.mean.get(), v.get()))

    def learn_one(self, x: Point) -> None:
        self._var.update(point_value(x))
        self._n += 1

    def _get_state(self) -> State:
        return {"n": self._n, "rolling": rolling_var_to_state(self._var)}

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._var = rolling_var_from_state(state["rolling"], self.window_size)


register(RollingZScore.name, RollingZScore)
