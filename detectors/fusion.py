"""``fusion``: robust residuals -> rank tail probabilities -> multi-scale likelihood -> alarm
hygiene. The ``default`` detector (chosen by ``benchmarks/nab_benchmark.py``).

Why this design (each step was kept only if it raised the NAB dev-subset score):

1. **Two cheap forecasters, chosen online.** A rolling *median* of the last ``median_window``
   values (robust to the spikes it must detect) and a *time-of-day profile*: the median of the
   last ``season_depth`` values seen in the same ``bucket_seconds`` slot of the day. Spend is
   often daily-seasonal -- then the profile predicts the regular ramps that would fool the
   median -- and often not, then the profile is noise. Whichever currently has the lower
   exponentially weighted absolute error (fading ``select_fade``) supplies the residual.
2. **Rank tail probabilities, not z-scores.** The absolute residual is ranked against the last
   ``history`` residuals of the same model: ``p = #{r >= e} / (n + 1)``, decaying as
   ``(max / e) ** gamma`` past the maximum. Scale-free (one threshold serves every stream) and
   honest about heavy tails. For the point test the residual is first shrunk by ``tolerance``
   (5 %): a spike within a few percent of a previous one is a repeat, not news.
3. **Time-of-day scale.** The selected residual is also divided by the largest residual seen
   within ``scale_span`` coarse slots (``scale_seconds`` each) of the same time of day on the
   previous ``scale_depth`` days, and that ratio is ranked against its own history. A daily job
   that spikes at roughly the same hour (drifting across the fine profile's slots) sets its own
   scale, so an off-schedule spike a third its size still stands out -- whereas ranked against
   the global residual history it is dwarfed by the scheduled spikes.
4. **Anomaly likelihood over several time scales** (Numenta's trick). For each ``w`` in
   ``avg_windows`` the mean percentile of the last ``w`` residuals is itself ranked against its
   own history. It catches sustained changes (level shifts, variance bursts, new oscillations)
   that no single point reveals, while streams that are always jumpy are discounted.
5. **Alarm hygiene.** ``p`` is the smallest of these p-values. It is multiplied by
   ``(1 + k) ** flap_penalty`` where ``k`` is the number of alarms (``p < alarm_p``) in the last
   ``alarm_memory`` points: a stream that keeps alarming must be ever more surprising to page
   again (the usual fate of a flapping alert). After an alarm, the next ``refractory`` points
   only score if they are more surprising than it: one incident, one page. Below the alarm
   level the same idea applies softly: a point that is not more surprising than every one of
   the last ``record_window`` points is a continuation of recent news and its score is scaled
   by ``record_factor`` (still graded, far below paging). Runs of near-threshold scores from
   one slow episode otherwise count as many false positives once the threshold is lowered.

The score is ``-log10(p) / log_scale`` clipped to [0, 1] (``log_scale = 6``: 0.5 is p = 1e-3).
All state is bounded (fixed-length deques, at most ``86400 / bucket_seconds`` profile slots and
``86400 / scale_seconds`` scale slots of ``scale_depth + 1`` days) and plain data; the algorithm
is deterministic. It is custom code rather than river objects because sorted rank windows and
the time-of-day profile have no river counterpart that can be restored faithfully from plain
data.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Sequence
from typing import Any, NamedTuple

from ._windows import RankWindow, day_index, seconds_of_day
from .base import BaseDetector, Point, State, check_float, check_int, clip01, point_value
from .registry import register


def _median(values: Sequence[float]) -> float:
    s = sorted(values)
    k = len(s)
    h = k // 2
    return s[h] if k % 2 else 0.5 * (s[h - 1] + s[h])


class _Analysis(NamedTuple):
    e_med: float  # |value - rolling median|
    e_season: float | None  # |value - time-of-day profile|, None if the slot is new
    pct: float  # percentile of the selected residual (feeds the likelihood windows)
    means: list[float]  # mean percentile per avg window (only those already full)
    p: float  # fused p-value, after the alarm-rate penalty
    slot: int  # time-of-day slot of the point
    e_sel: float  # the selected residual (feeds the time-of-day scales)
    ratio: float | None  # e_sel / its time-of-day scale, None while there is no scale yet
    coarse: int  # coarse time-of-day slot of the point (for the scales)
    day: int  # calendar day of the point


class Fusion(BaseDetector):
    name = "fusion"

    def __init__(
        self,
        median_window: int = 30,
        history: int = 3000,
        gamma: float = 3.0,
        tolerance: float = 0.05,
        bucket_seconds: int = 300,
        season_depth: int = 3,
        select_fade: float = 0.02,
        avg_windows: Sequence[int] = (10, 30),
        alarm_p: float = 1e-3,
        refractory: int = 100,
        flap_penalty: float = 1.0,
        alarm_memory: int = 5000,
        grace_period: int = 100,
        log_scale: float = 6.0,
        record_window: int = 60,
        record_factor: float = 0.25,
        scale_seconds: int = 1800,
        scale_span: int = 2,
        scale_depth: int = 5,
    ) -> None:
        self.median_window = check_int("median_window", median_window, min_value=1)
        self.history = check_int("history", history, min_value=10)
        self.gamma = check_float("gamma", gamma, min_value=0.0, min_open=True)
        self.tolerance = check_float("tolerance", tolerance, min_value=0.0)
        self.bucket_seconds = check_int(
            "bucket_seconds", bucket_seconds, min_value=1, max_value=86400
        )
        self.season_depth = check_int("season_depth", season_depth, min_value=0)
        self.select_fade = check_float(
            "select_fade", select_fade, min_value=0.0, max_value=1.0, min_open=True
        )
        if isinstance(avg_windows, str | bytes) or not isinstance(avg_windows, Sequence):
            raise ValueError(f"avg_windows must be a list of ints, got {avg_windows!r}")
        self.avg_windows = sorted(check_int("avg_windows", w, min_value=2) for w in avg_windows)
        self.alarm_p = check_float("alarm_p", alarm_p, min_value=0.0, max_value=1.0)
        self.refractory = check_int("refractory", refractory, min_value=0)
        self.flap_penalty = check_float("flap_penalty", flap_penalty, min_value=0.0)
        self.alarm_memory = check_int("alarm_memory", alarm_memory, min_value=1)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self.log_scale = check_float("log_scale", log_scale, min_value=0.0, min_open=True)
        self.record_window = check_int("record_window", record_window, min_value=0)
        self.record_factor = check_float(
            "record_factor", record_factor, min_value=0.0, max_value=1.0
        )
        self.scale_seconds = check_int("scale_seconds", scale_seconds, min_value=1, max_value=86400)
        self.scale_span = check_int("scale_span", scale_span, min_value=0, max_value=12)
        self.scale_depth = check_int("scale_depth", scale_depth, min_value=0)
        self._n_coarse = -(-86400 // self.scale_seconds)
        self._reset()

    # -- state -------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._n = 0
        self._vals: deque[float] = deque(maxlen=self.median_window)
        self._vals_sorted: list[float] = []  # same values, sorted (the median in O(1))
        self._res_med = RankWindow(self.history)
        self._res_season = RankWindow(self.history)
        self._err_med = 0.0
        self._err_season = 0.0
        self._profile: dict[int, deque[float]] = {}
        # per avg window: the previous w-1 percentiles, and the history of window means
        self._pcts = [deque[float](maxlen=w - 1) for w in self.avg_windows]
        self._means = [RankWindow(self.history) for _ in self.avg_windows]
        self._alarms: deque[int] = deque()
        self._quiet = 0
        self._quiet_p = 1.0
        # coarse slot -> [[day, max selected residual that day], ...] (last scale_depth + 1 days)
        self._scales: dict[int, list[list[float]]] = {}
        self._res_ratio = RankWindow(self.history)
        # cache of the scale lookup (coarse slot, day, top): it only depends on previous days'
        # entries, so it stays valid until an entry of another day changes (not state)
        self._top: tuple[int, int, float] = (-1, 0, -1.0)
        # [index, p] of the last record_window points, p increasing: recent[0] is their minimum
        self._recent: deque[list[float]] = deque()
        self._memo: tuple[Any, _Analysis | None] = (None, None)

    def _get_state(self) -> State:
        return {
            "n": self._n,
            "vals": list(self._vals),
            "res_med": self._res_med.to_state(),
            "res_season": self._res_season.to_state(),
            "err_med": self._err_med,
            "err_season": self._err_season,
            "profile": [[slot, list(q)] for slot, q in sorted(self._profile.items())],
            "pcts": [list(d) for d in self._pcts],
            "means": [w.to_state() for w in self._means],
            "alarms": list(self._alarms),
            "quiet": self._quiet,
            "quiet_p": self._quiet_p,
            "recent": [list(e) for e in self._recent],
            "scales": [[k, [list(e) for e in v]] for k, v in sorted(self._scales.items())],
            "res_ratio": self._res_ratio.to_state(),
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        if len(state["pcts"]) != len(self.avg_windows) or len(state["means"]) != len(
            self.avg_windows
        ):
            raise ValueError("state does not match avg_windows")
        self._n = int(state["n"])
        self._vals.extend(float(v) for v in state["vals"])
        self._vals_sorted = sorted(self._vals)
        self._res_med = RankWindow(self.history, state["res_med"])
        self._res_season = RankWindow(self.history, state["res_season"])
        self._err_med = float(state["err_med"])
        self._err_season = float(state["err_season"])
        for slot, q in state["profile"]:
            self._profile[int(slot)] = deque((float(v) for v in q), maxlen=self.season_depth)
        for d, saved in zip(self._pcts, state["pcts"], strict=True):
            d.extend(float(v) for v in saved)
        self._means = [RankWindow(self.history, w) for w in state["means"]]
        self._alarms.extend(int(i) for i in state["alarms"])
        self._quiet = int(state["quiet"])
        self._quiet_p = float(state["quiet_p"])
        self._recent.extend([int(i), float(q)] for i, q in state["recent"])
        for k, v in state["scales"]:
            self._scales[int(k)] = [[int(d), float(m)] for d, m in v]
        self._res_ratio = RankWindow(self.history, state["res_ratio"])

    # -- algorithm ---------------------------------------------------------------------------
    def _analyse(self, x: Point) -> _Analysis:
        """Everything the point implies, as a pure function of the state and ``x``.

        Memoised on (t, value) so that ``learn_one`` right after ``score_one`` on the same point
        does not redo the work (the memo is a cache, not state: it never changes a result).
        """
        key = (x["t"], x["value"])
        memo = self._memo
        if memo[1] is not None and memo[0] == key:
            return memo[1]
        v = point_value(x)
        sod = seconds_of_day(x["t"])
        slot = int(sod // self.bucket_seconds)
        if not self._vals:
            out = _Analysis(0.0, None, 0.0, [], 1.0, slot, 0.0, None, 0, 0)
            self._memo = (key, out)
            return out
        gamma = self.gamma
        srt = self._vals_sorted
        k = len(srt)
        h = k // 2
        e_med = abs(v - (srt[h] if k % 2 else 0.5 * (srt[h - 1] + srt[h])))
        window, e = self._res_med, e_med
        e_season = None
        if self.season_depth:
            q = self._profile.get(slot)
            if q:
                e_season = abs(v - _median(q))
                if self._err_season < self._err_med:
                    window, e = self._res_season, e_season
        pct = 1.0 - window.tail(e, gamma)
        p = window.tail(e / (1.0 + self.tolerance), gamma) if self.tolerance else 1.0 - pct
        means: list[float] = []
        for w, prev, hist in zip(self.avg_windows, self._pcts, self._means, strict=True):
            if len(prev) < w - 1:
                break  # windows are sorted: the longer ones are not full either
            u = (pct + sum(prev)) / w
            means.append(u)
            pu = hist.tail(u, gamma)
            if pu < p:
                p = pu
        ratio = None
        coarse = day = 0
        if self.scale_depth:
            coarse = int(sod // self.scale_seconds)
            day = day_index(x["t"])
            cached = self._top
            if cached[0] == coarse and cached[1] == day:
                top = cached[2]
            else:
                top = -1.0
                scales, nc = self._scales, self._n_coarse
                for k in range(coarse - self.scale_span, coarse + self.scale_span + 1):
                    for d, m in scales.get(k % nc, ()):
                        if m > top and d != day:
                            top = m
                self._top = (coarse, day, top)
            if top >= 0.0:  # the largest residual near this time of day on previous days
                ratio = min(e / (top + 1e-12 * (1.0 + abs(v))), 1e300)
                pr = self._res_ratio.tail(ratio / (1.0 + self.tolerance), gamma)
                if pr < p:
                    p = pr
        if self._alarms and self.flap_penalty:
            p *= (1.0 + len(self._alarms)) ** self.flap_penalty
        out = _Analysis(e_med, e_season, pct, means, p, slot, e, ratio, coarse, day)
        self._memo = (key, out)
        return out

    def score_one(self, x: Point) -> float:
        if self._n < self.grace_period:
            return 0.0
        p = self._analyse(x).p
        if self._quiet > 0 and p >= self._quiet_p:
            return 0.0
        s = clip01(-math.log10(max(p, 1e-300)) / self.log_scale)
        recent = self._recent
        if recent and p >= recent[0][1]:  # not a new record: a continuation of recent news
            s *= self.record_factor
        return s

    def learn_one(self, x: Point) -> None:
        a = self._analyse(x)
        n = self._n
        alarms = self._alarms
        while alarms and alarms[0] <= n - self.alarm_memory:
            alarms.popleft()
        if self._quiet > 0:
            self._quiet -= 1
        if n >= self.grace_period and a.p < self.alarm_p:
            if self._quiet == 0:  # a new incident (not a continuation of the last one)
                alarms.append(n)
                self._quiet_p = a.p
            self._quiet = self.refractory
        if self.record_window and n >= self.grace_period:
            recent = self._recent
            while recent and recent[-1][1] >= a.p:
                recent.pop()
            recent.append([n, a.p])
            while recent[0][0] <= n - self.record_window:
                recent.popleft()
        if self._vals:
            fade = self.select_fade
            self._res_med.add(a.e_med)
            self._err_med += fade * (a.e_med - self._err_med)
            if a.e_season is not None:
                self._res_season.add(a.e_season)
                self._err_season += fade * (a.e_season - self._err_season)
            else:  # no profile for this slot yet: count it against the profile
                self._err_season += fade * (2.0 * a.e_med - self._err_season)
            if a.ratio is not None:
                self._res_ratio.add(a.ratio)
            if self.scale_depth:
                days = self._scales.setdefault(a.coarse, [])
                if days and days[-1][0] == a.day:
                    if a.e_sel > days[-1][1]:
                        days[-1][1] = a.e_sel
                        if self._top[1] != a.day:
                            self._top = (-1, 0, -1.0)
                else:
                    days.append([a.day, a.e_sel])
                    if len(days) > self.scale_depth + 1:
                        del days[0]
                    self._top = (-1, 0, -1.0)
            for u, hist in zip(a.means, self._means, strict=False):
                hist.add(u)
            for prev in self._pcts:
                prev.append(a.pct)
        v = point_value(x)
        if self.season_depth:
            q = self._profile.get(a.slot)
            if q is None:
                q = self._profile[a.slot] = deque(maxlen=self.season_depth)
            q.append(v)
        vals, srt = self._vals, self._vals_sorted
        if len(vals) == self.median_window:
            del srt[bisect_left(srt, vals[0])]
        insort(srt, v)
        vals.append(v)
        self._n = n + 1
        self._memo = (None, None)


register(Fusion.name, Fusion)
