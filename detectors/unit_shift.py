"""``unit_shift``: a sequential test (CUSUM) on a per-call unit signal -- cost per call, tokens
per call -- that counts evidence call by call instead of waiting for buckets to fill.

Why: a 2x change of cost per call is large next to the scatter of one call's cost (lognormal
token counts scatter one call by about 0.4-0.6 in log), so a handful of calls already tell it;
judging a 5-minute mean twice (``for``) waited 5-10 minutes whatever the traffic. Here each
bucket's calls are weighed one by one against the learned level of log unit value:

    S <- min(cap, max(0, S + n (d (y - m) - d^2 / 2) / s^2))

(``y``: the bucket's mean log value per call, given as the point's ``log_mean`` with its call
count ``n``, else the log of ``value`` as one call; ``m``: the learned level; ``s``: the learned
per-call spread of the log value; ``d = ln(ratio)``: the shift the test is tuned to.) ``S`` is
the log-likelihood ratio of "the unit value moved by ``ratio``" against "it did not", so it
alarms after about ``h / (d^2 / 2 s^2)`` calls of a shift of ``ratio``: a dozen calls for 2x,
two or three for a 10x misrouting; a shift under ``sqrt(ratio)`` drifts ``S`` down and never
alarms, whatever the traffic. One call's deviation counts at most ``clip`` spreads, so one
outlier call cannot page; ``S`` is capped at ``2 h`` so the test clears soon after a change
ends.

The level and spread learn (each call with weight ``alpha``) only from buckets that are no
evidence of a rise (``S`` under ``h / 2``), so an incident does not become its own baseline --
unless the evidence lasts ``adopt_calls`` calls: then it is the new normal, adopted at once.
Until ``grace_calls`` calls have been learned the score is 0. The score is ``S / (S + h)``:
0.5 exactly at the alarm (a watch names it with ``score: 0.5``). ``expected`` is the baseline
mean unit value (the lognormal mean of the level and spread), for the alert's ratio.
"""

from __future__ import annotations

import math
from typing import Any

from .base import BaseDetector, Point, State, check_float, check_int, clip01
from .registry import register

_TINY = 1e-12


def point_calls(x: Point) -> tuple[float, float] | None:
    """``(n, y)``: the point's call count and mean log value per call (``None``: no value)."""
    raw_n = x.get("n", 1.0)
    n = float(raw_n) if isinstance(raw_n, int | float) else 1.0
    if not math.isfinite(n) or n <= 0.0:
        return None
    y = x.get("log_mean")
    if isinstance(y, int | float) and math.isfinite(y):
        return n, float(y)
    v = x.get("value")
    if not isinstance(v, int | float) or not math.isfinite(v) or v <= 0.0:
        return None
    return n, math.log(v)


class UnitShift(BaseDetector):
    name = "unit_shift"
    exact_restore = True

    def __init__(
        self,
        ratio: float = 2.0,
        h: float = 12.0,
        alpha: float = 0.005,
        spread: float = 0.5,
        min_spread: float = 0.15,
        clip: float = 3.0,
        adopt_calls: int = 600,
        grace_calls: int = 30,
    ) -> None:
        self.ratio = check_float("ratio", ratio, min_value=1.0, max_value=100.0, min_open=True)
        self.h = check_float("h", h, min_value=0.0, min_open=True)
        self.alpha = check_float("alpha", alpha, min_value=0.0, max_value=0.5, min_open=True)
        self.spread = check_float("spread", spread, min_value=0.0, max_value=5.0, min_open=True)
        self.min_spread = check_float("min_spread", min_spread, min_value=0.0, max_value=5.0)
        self.clip = check_float("clip", clip, min_value=0.0, max_value=100.0, min_open=True)
        self.adopt_calls = check_int("adopt_calls", adopt_calls, min_value=1)
        self.grace_calls = check_int("grace_calls", grace_calls, min_value=0)
        self._reset()

    def _reset(self) -> None:
        self._calls = 0.0  # calls learned
        self._level = 0.0  # learned mean log value per call
        self._var = self.spread**2  # learned per-call variance of the log value
        self._s = 0.0  # the CUSUM
        self._high = 0.0  # calls of evidence in a row
        self._high_sum = 0.0  # ... and their summed log values (the level adopted)

    def _get_state(self) -> State:
        return {
            "calls": self._calls,
            "level": self._level,
            "var": self._var,
            "s": self._s,
            "high": self._high,
            "high_sum": self._high_sum,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._calls = float(state["calls"])
        self._level = float(state["level"])
        self._var = float(state["var"])
        self._s = float(state["s"])
        self._high = float(state["high"])
        self._high_sum = float(state["high_sum"])

    @property
    def warmed_up(self) -> bool:
        return self._calls >= max(self.grace_calls, 1)

    def _var_used(self) -> float:
        return max(self._var, self.min_spread**2, _TINY)

    def _next(self, n: float, y: float) -> float:
        """The CUSUM after a bucket of ``n`` calls of mean log value ``y`` (read-only)."""
        var = self._var_used()
        d = math.log(self.ratio)
        dev = min(y - self._level, self.clip * math.sqrt(var))
        s = self._s + n * (d * dev - d * d / 2.0) / var
        return min(max(s, 0.0), 2.0 * self.h)

    def expected(self, x: Point) -> float:
        """The baseline's mean unit value (0 before anything was learned)."""
        if self._calls <= 0.0:
            return 0.0
        return math.exp(min(self._level + self._var_used() / 2.0, 700.0))

    def score_one(self, x: Point) -> float:
        got = point_calls(x)
        if got is None or not self.warmed_up:
            return 0.0
        s = self._next(*got)
        return clip01(s / (s + self.h))

    def learn_one(self, x: Point) -> None:
        got = point_calls(x)
        if got is None:
            return
        n, y = got
        if not self.warmed_up:
            self._learn(n, y)
            return
        self._s = self._next(n, y)
        if self._s >= self.h / 2.0:
            self._high += n
            self._high_sum += n * y
            if self._high >= self.adopt_calls:  # the new normal: adopt it, restart the test
                self._level = self._high_sum / self._high
                self._s, self._high, self._high_sum = 0.0, 0.0, 0.0
            return
        self._high, self._high_sum = 0.0, 0.0
        self._learn(n, y)

    def _learn(self, n: float, y: float) -> None:
        """Level and per-call variance, each call weighted ``alpha`` (faster while young, so
        the first calls set the level instead of a prior of 1.0)."""
        a = 1.0 - (1.0 - max(self.alpha, 1.0 / (self._calls + n))) ** n
        if self._calls <= 0.0:
            self._level = y
        else:
            dev = y - self._level
            self._level += a * dev
            # a bucket mean of n calls scatters by var / n: n dev^2 estimates one call's var,
            # winsorised at ``clip`` spreads (the prior's while young) so one odd call cannot
            # widen the test for hours
            young = self._calls < self.grace_calls
            cap = self.clip**2 * (self.spread**2 if young else self._var_used())
            self._var += a * (min(n * dev * dev, cap) - self._var)
        self._calls += n


register(UnitShift.name, UnitShift)
