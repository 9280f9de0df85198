"""Level-shift detector on river's ``drift.PageHinkley`` (CUSUM-like test).

Why: runaway spend is often a *sustained* step up rather than a single spike; Page-Hinkley
accumulates small deviations and fires on persistent shifts. Values are standardised by a
rolling river ``Var`` first so one threshold works across scales; the score is the test
statistic relative to the threshold, and the test restarts after a detection as in river.
State: PageHinkley's running mean (n, mean), cumulative sums and extrema, copied field by field
(the initial +inf minimum is stored as null).
"""

from __future__ import annotations

import math
from typing import Any

from river import drift, stats

from ._river_state import new_rolling_var, rolling_var_from_state, rolling_var_to_state
from ._scoring import safe_z
from .base import BaseDetector, Point, State, check_float, check_int, clip01, point_value
from .registry import register


class PageHinkleyShift(BaseDetector):
    name = "page_hinkley"
    exact_restore = True

    def __init__(
        self,
        threshold: float = 10.0,
        delta: float = 1.0,
        alpha: float = 0.999,
        window_size: int = 1000,
        grace_period: int = 100,
    ) -> None:
        self.threshold = check_float("threshold", threshold, min_value=0.0, min_open=True)
        self.delta = check_float("delta", delta, min_value=0.0)
        self.alpha = check_float("alpha", alpha, min_value=0.0, max_value=1.0, min_open=True)
        self.window_size = check_int("window_size", window_size, min_value=2)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self._reset()

    def _new_ph(self) -> drift.PageHinkley:
        return drift.PageHinkley(
            min_instances=1, delta=self.delta, threshold=self.threshold, alpha=self.alpha
        )

    def _reset(self) -> None:
        self._ph = self._new_ph()
        self._scale = new_rolling_var(self.window_size)
        self._n = 0

    def _z(self, y: float) -> float:
        v = self._scale.obj
        return max(-50.0, min(50.0, safe_z(y, v.mean.get(), v.get())))

    def _stat(self, z: float) -> float:
        """PageHinkley's test statistic after a hypothetical update with ``z`` (read-only)."""
        ph = self._ph
        if ph.drift_detected:  # river resets before the next update
            n, mean, s_inc, s_dec, mn, mx = 0.0, 0.0, 0.0, 0.0, math.inf, -1.0
        else:
            m = ph._x_mean
            n, mean = m.n, m._mean
            s_inc, s_dec = ph._sum_increase, ph._sum_decrease
            mn, mx = ph._min_increase, ph._max_decrease
        n += 1.0
        mean += (z - mean) / n
        dev = z - mean
        s_inc = ph.alpha * s_inc + dev - ph.delta
        s_dec = ph.alpha * s_dec + dev + ph.delta
        return max(s_inc - min(mn, s_inc), max(mx, s_dec) - s_dec)

    def score_one(self, x: Point) -> float:
        if self._n < max(self.grace_period, 2):
            return 0.0
        stat = max(self._stat(self._z(point_value(x))), 0.0)
        return clip01(stat / (stat + self.threshold))  # 0.5 at the drift threshold

    def learn_one(self, x: Point) -> None:
        y = point_value(x)
        if self._n >= 2:
            self._ph.update(self._z(y))
        self._scale.update(y)
        self._n += 1

    def _get_state(self) -> State:
        ph = self._ph
        mn = ph._min_increase
        return {
            "n": self._n,
            "ph": {
                "n": ph._x_mean.n,
                "mean": ph._x_mean._mean,
                "sum_increase": ph._sum_increase,
                "sum_decrease": ph._sum_decrease,
                "min_increase": None if math.isinf(mn) else mn,
                "max_decrease": ph._max_decrease,
                "drift": ph._drift_detected,
            },
            "scale": rolling_var_to_state(self._scale),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        s = state["ph"]
        ph = self._new_ph()
        ph._x_mean = stats.Mean._from_state(n=s["n"], mean=s["mean"])
        ph._sum_increase = s["sum_increase"]
        ph._sum_decrease = s["sum_decrease"]
        ph._min_increase = math.inf if s["min_increase"] is None else s["min_increase"]
        ph._max_decrease = s["max_decrease"]
        ph._drift_detected = bool(s["drift"])
        self._ph = ph
        self._n = int(state["n"])
        self._scale = rolling_var_from_state(state["scale"], self.window_size)


register(PageHinkleyShift.name, PageHinkleyShift)
