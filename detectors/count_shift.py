"""``count_shift``: a sustained rise of a per-bucket count (calls, events) against its seasonal
expected count, judged over several trailing windows at once.

Why: "traffic doubled" is a statement about a rate, and counts carry their own noise (Poisson,
more when calls come in bursts of one task's steps) *and* the error of the expected rate itself
(no seasonal model predicts a Tuesday afternoon exactly). A test that knows only the first
pages on every wrong guess of the second (``rate_shift``'s Poisson CUSUM did: about one false
alert per use-case-week); a ratio test that knows only the second waits for big windows on thin
traffic. Here the count ``X`` over a trailing window of expected count ``M`` is judged by its
signed deviance (the Poisson likelihood-ratio statistic, close to normal even for a handful of
events) scaled by the variance both noises give,

    z = sign(X - M) * sqrt(2 (X ln(X / M) - (X - M))) / sqrt(phi + M sigma^2)

(``phi``: learned variance-to-mean ratio of one bucket; ``sigma``: learned relative error of
the expected count over a block of buckets), so a busy use case is judged by its model's error
and a thin one by its counting noise, with no knob per traffic level. A bucket alarms when a
trailing window of 5, 10, 20, 40, 80 or 160 buckets has ``z >= z`` and
``X >= min_ratio * M``. Short windows catch a big jump on busy traffic at once, long ones a
doubling of a thin trickle.

The expected count is learned per hour of the day: 24 slots at each hour's middle, each a
decayed mean count per bucket (``alpha`` per bucket it learns, so about ``1/alpha`` buckets of
that hour), read with linear interpolation between the two slots around a bucket, so the
morning ramp is not a step. Weekdays teach the slots; weekends only a weekend factor against
them, so a weekend never bends the working day. An hour slot is judged only once it has
learned ``_SEEN`` minutes: the first morning a use case lives through is not an incident, so a
new use case's volume is judged from its second day at each hour; a weekend hour not seen on a
weekend yet is judged with the expected count's error taken as 50 %. A bucket that is evidence
of a rise (half the alarm's ``z`` or more, past ``min_ratio``) is not learned, so an incident
does not become its own baseline -- unless it lasts ``adopt_buckets``: then it is the new
normal, adopted at once. Until ``grace_period`` buckets have been learned the score is 0. The
score is ``z / (z + z_alarm)`` of the strongest window past ``min_ratio``: 0.5 exactly at the
alarm (a watch names it with ``score: 0.5``); a rise short of ``min_ratio`` scores under 0.5,
ranked by its ``z``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .base import BaseDetector, Point, State, check_float, check_int, clip01, point_value
from .registry import register

WINDOWS = (5, 10, 20, 40, 80, 160)  # trailing windows, in buckets
_RING = WINDOWS[-1]
_BLOCK = 20  # buckets per block the expected count's relative error is learned from
_PRIOR_BUCKETS = 1.0  # how many buckets of the overall mean an unseen hour slot is worth
_SEEN = 30.0  # minutes an hour slot (or that hour of a weekend) must have learned to be judged
_UNSEEN_SIGMA2 = 0.25  # a weekend hour not seen yet: its expected count may be 50 % off
_PRIOR_WEEKEND = 10.0  # how many expected counts of "as on weekdays" the weekend factor starts with


def signed_deviance(x: float, m: float) -> float:
    """Signed root of the Poisson deviance of count ``x`` against mean ``m`` (z-like)."""
    if m <= 0.0:
        return 0.0
    d = 2.0 * ((x * math.log(x / m) if x > 0.0 else 0.0) - (x - m))
    r = math.sqrt(max(d, 0.0))
    return r if x >= m else -r


class CountShift(BaseDetector):
    name = "count_shift"
    exact_restore = True

    def __init__(
        self,
        z: float = 4.5,
        min_ratio: float = 1.7,
        alpha: float = 0.01,
        min_sigma: float = 0.05,
        adopt_buckets: int = 240,
        grace_period: int = 60,
    ) -> None:
        self.z = check_float("z", z, min_value=0.0, min_open=True)
        self.min_ratio = check_float("min_ratio", min_ratio, min_value=1.0, max_value=100.0)
        self.alpha = check_float("alpha", alpha, min_value=0.0, max_value=0.5, min_open=True)
        self.min_sigma = check_float("min_sigma", min_sigma, min_value=0.0, max_value=2.0)
        self.adopt_buckets = check_int("adopt_buckets", adopt_buckets, min_value=1)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._sums = [0.0] * 24  # per hour slot: decayed weighted counts (weekday units)
        self._weights = [0.0] * 24  # ... and decayed weights (buckets)
        self._wk = [0.0, 0.0, 0]  # weekend: decayed counts, what weekdays expect, buckets seen
        self._seen = [0.0] * 48  # minutes learned per hour slot (weekdays), then per weekend hour
        self._last_s = -1.0  # the previous point's time (epoch s): how long a bucket is
        self._phi = 1.0  # variance / mean of one bucket's count (1 = Poisson)
        self._sigma2 = 0.25  # squared relative error of a block's expected count (prior: 50 %)
        self._counts: list[float] = []  # the last ``_RING`` counts, oldest first
        self._means: list[float] = []  # their expected counts
        self._wsums = [0.0] * len(WINDOWS)  # each window's count (the last ``w`` buckets)
        self._wmeans = [0.0] * len(WINDOWS)  # ... and its expected count
        self._block = [0.0, 0.0, 0]  # the open block: count, expected, buckets
        self._high = 0  # consecutive evidence buckets
        self._high_ratio = 0.0  # their summed window ratio (for adoption)

    def _get_state(self) -> State:
        return {
            "n": self._n,
            "sums": list(self._sums),
            "weights": list(self._weights),
            "wk": list(self._wk),
            "seen": list(self._seen),
            "last_s": self._last_s,
            "phi": self._phi,
            "sigma2": self._sigma2,
            "counts": list(self._counts),
            "means": list(self._means),
            "wsums": list(self._wsums),
            "wmeans": list(self._wmeans),
            "block": list(self._block),
            "high": self._high,
            "high_ratio": self._high_ratio,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._sums = [float(v) for v in state["sums"]]
        self._weights = [float(v) for v in state["weights"]]
        wk = state["wk"]
        self._wk = [float(wk[0]), float(wk[1]), int(wk[2])]
        self._seen = [float(v) for v in state["seen"]]
        self._last_s = float(state["last_s"])
        self._phi = float(state["phi"])
        self._sigma2 = float(state["sigma2"])
        self._counts = [float(v) for v in state["counts"]]
        self._means = [float(v) for v in state["means"]]
        self._wsums = [float(v) for v in state["wsums"]]
        self._wmeans = [float(v) for v in state["wmeans"]]
        b = state["block"]
        self._block = [float(b[0]), float(b[1]), int(b[2])]
        self._high = int(state["high"])
        self._high_ratio = float(state["high_ratio"])

    # -- the model ---------------------------------------------------------------------------
    def _slot_rate(self, h: int, overall: float) -> float:
        """Hour slot ``h``'s mean count per bucket, shrunk towards the overall mean while the
        slot has seen few buckets (a gamma-Poisson estimate with ``_PRIOR_BUCKETS`` of prior)."""
        return (self._sums[h] + _PRIOR_BUCKETS * overall) / (self._weights[h] + _PRIOR_BUCKETS)

    def _where(self, t: Any) -> tuple[int, int, float, bool]:
        """The two hour slots around ``t`` (slots sit at each hour's middle), the weight of the
        second, and whether ``t`` is on a weekend."""
        if not isinstance(t, datetime):
            return 0, 0, 0.0, False
        pos = t.hour + t.minute / 60.0 - 0.5
        lo = math.floor(pos)
        return lo % 24, (lo + 1) % 24, pos - lo, t.weekday() >= 5

    def _weekend_factor(self) -> float:
        counts, expect = self._wk[0], self._wk[1]
        return (counts + _PRIOR_WEEKEND) / (expect + _PRIOR_WEEKEND)

    def _weekday_mean(self, h0: int, h1: int, w: float) -> float:
        total_w = sum(self._weights)
        overall = sum(self._sums) / total_w if total_w > 0.0 else 0.0
        return (1.0 - w) * self._slot_rate(h0, overall) + w * self._slot_rate(h1, overall)

    def expected(self, x: Point) -> float:
        """The expected count for ``x["t"]``'s bucket."""
        h0, h1, w, weekend = self._where(x.get("t"))
        mean = self._weekday_mean(h0, h1, w)
        return mean * self._weekend_factor() if weekend else mean

    @property
    def warmed_up(self) -> bool:
        return self._n >= max(self.grace_period, 1)

    def _windows(self, v: float, mean: float, unseen: bool = False) -> tuple[float, float, float]:
        """The strongest window's ``z`` past ``min_ratio`` (0 if none) and that window's ratio,
        and the strongest window's ``z`` whatever its ratio (for the score's ranking)."""
        best_z, best_ratio, any_z = 0.0, 0.0, 0.0
        n = len(self._counts) + 1
        phi, s2 = max(self._phi, 1.0), max(self._sigma2, self.min_sigma**2)
        if unseen:  # a weekend hour not seen yet: the weekend factor may not hold there
            s2 = max(s2, _UNSEEN_SIGMA2)
        for i, w in enumerate(WINDOWS):
            if n < w:
                break
            x = self._wsums[i] + v - (self._counts[-w] if len(self._counts) >= w else 0.0)
            m = self._wmeans[i] + mean - (self._means[-w] if len(self._means) >= w else 0.0)
            if m <= 0.0 or x <= m:
                continue
            z = signed_deviance(x, m) / math.sqrt(phi + m * s2)
            any_z = max(any_z, z)
            if x >= self.min_ratio * m and z > best_z:
                best_z, best_ratio = z, x / m
        return best_z, best_ratio, any_z

    def score_one(self, x: Point) -> float:
        """``z / (z + z_alarm)`` of the strongest window past ``min_ratio`` (0.5 at the alarm);
        a rise short of ``min_ratio`` is still ranked by its ``z``, but scores under 0.5."""
        if not self.warmed_up:
            return 0.0
        h0, h1, w, weekend = self._where(x.get("t"))
        if not self._slots_known(h0, h1, w) or (weekend and self._wk[2] < _SEEN):
            return 0.0
        v = max(point_value(x), 0.0)
        unseen = weekend and not self._weekend_known(x.get("t"))
        z, _, any_z = self._windows(v, self.expected(x), unseen)
        if z > 0.0:
            return clip01(z / (z + self.z))
        return min(any_z / (any_z + self.z), 0.49) if any_z > 0.0 else 0.0

    def learn_one(self, x: Point) -> None:
        v = max(point_value(x), 0.0)
        h0, h1, w, weekend = self._where(x.get("t"))
        self._n += 1
        slots_known = self._slots_known(h0, h1, w)
        weekday_mean = self._weekday_mean(h0, h1, w)
        if not (slots_known and (not weekend or self._wk[2] >= _SEEN)):
            # Not judged yet: the bucket is its own expectation in the windows (no evidence
            # either way), and teaches the weekday slots or, on a weekend, the weekend factor.
            self._push(v, v)
            self._learn_shape(v, x.get("t"), h0, h1, w, weekend, slots_known, weekday_mean)
            return
        mean = weekday_mean * (self._weekend_factor() if weekend else 1.0)
        unseen = weekend and not self._weekend_known(x.get("t"))
        z, ratio, _ = self._windows(v, mean, unseen) if self.warmed_up else (0.0, 0.0, 0.0)
        self._push(v, mean)
        if z >= self.z / 2.0:
            self._high += 1
            self._high_ratio += ratio
            if self._high >= self.adopt_buckets:  # the new normal: adopt it, restart the windows
                scale = self._high_ratio / self._high
                self._sums = [s * scale for s in self._sums]
                self._counts, self._means = [], []
                self._wsums, self._wmeans = [0.0] * len(WINDOWS), [0.0] * len(WINDOWS)
                self._high, self._high_ratio = 0, 0.0
            return
        self._high, self._high_ratio = 0, 0.0
        self._learn_noise(v, mean, max(self.alpha, 1.0 / self._n))
        self._learn_shape(v, x.get("t"), h0, h1, w, weekend, slots_known, weekday_mean)

    def _weekend_known(self, t: Any) -> bool:
        """Whether this hour has been seen on a weekend: a use case's first weekend afternoon
        is not judged by what its weekend night was like."""
        return isinstance(t, datetime) and self._seen[24 + t.hour] >= _SEEN

    def _slots_known(self, h0: int, h1: int, w: float) -> bool:
        """Whether the hour slots a bucket reads have learned ``_SEEN`` minutes (weighted)."""
        seen = self._seen
        return (w >= 1.0 or seen[h0] >= _SEEN) and (w <= 0.0 or seen[h1] >= _SEEN)

    def _learn_shape(
        self,
        v: float,
        t: Any,
        h0: int,
        h1: int,
        w: float,
        weekend: bool,
        known: bool,
        weekday_mean: float,
    ) -> None:
        """Weekdays teach the hour slots; weekends only the weekend factor (against the
        weekday slots, once those are known), so a weekend never bends the working day."""
        keep = 1.0 - self.alpha  # each slot forgets at this rate per bucket it learns
        hour = t.hour if isinstance(t, datetime) else -1
        minutes = 1.0  # how long this bucket is, from the previous point (capped at an hour)
        if isinstance(t, datetime):
            now = t.timestamp()
            if self._last_s >= 0.0:
                minutes = min(max(now - self._last_s, 0.0), 3600.0) / 60.0
            self._last_s = now
        if weekend:
            if known:
                self._wk[0] = keep * self._wk[0] + v
                self._wk[1] = keep * self._wk[1] + weekday_mean
                self._wk[2] += 1
                if hour >= 0:
                    self._seen[24 + hour] = min(self._seen[24 + hour] + minutes, _SEEN)
            return
        for h, share in ((h0, 1.0 - w), (h1, w)):
            if share > 0.0:
                d = keep**share
                self._sums[h] = d * self._sums[h] + share * v
                self._weights[h] = d * self._weights[h] + share
                self._seen[h] = min(self._seen[h] + share * minutes, _SEEN)

    def _push(self, v: float, mean: float) -> None:
        """Add a bucket to the trailing windows (running sums of the last ``w`` buckets)."""
        counts, means = self._counts, self._means
        for i, w in enumerate(WINDOWS):
            self._wsums[i] += v - (counts[-w] if len(counts) >= w else 0.0)
            self._wmeans[i] += mean - (means[-w] if len(means) >= w else 0.0)
        counts.append(v)
        means.append(mean)
        if len(counts) > _RING:
            del counts[0], means[0]

    def _learn_noise(self, v: float, mean: float, a: float) -> None:
        """``phi`` from each bucket, ``sigma^2`` from each block of ``_BLOCK`` buckets: the
        variance of a block's count beyond ``phi`` times its mean, relative to the mean squared."""
        if mean > 0.0:
            self._phi += a * ((v - mean) ** 2 / mean - self._phi)
        blk = self._block
        blk[0] += v
        blk[1] += mean
        blk[2] += 1
        if blk[2] >= _BLOCK:
            x, m = blk[0], blk[1]
            if m > 0.0:
                excess = ((x - m) ** 2 - max(self._phi, 1.0) * m) / (m * m)
                b = max(self.alpha * _BLOCK, 1.0 / (1.0 + self._n / _BLOCK))
                self._sigma2 += min(b, 0.5) * (min(max(excess, -1.0), 1.0) - self._sigma2)
            self._block = [0.0, 0.0, 0]


register(CountShift.name, CountShift)
