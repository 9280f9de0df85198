"""Seasonal rolling baseline: what a metric normally is at this hour of this day of the week.

Why this design: spend and traffic follow the working day and the working week, so "normal" at
03:00 on a Sunday is not "normal" at 15:00 on a Tuesday. A full 168-slot hour-of-week profile
needs weeks of history before it knows every slot; the profile here is a level plus an
hour-of-day offset plus a day-of-week offset (24 + 7 numbers), which is learned within days and
still captures the shape. Values can be log-transformed so that offsets are multiplicative
("the afternoon is 5x the night").

Anomalies are not learned into the baseline (river's ``protect_anomaly_detector`` idea): a point
beyond ``z_learn`` standard deviations is clipped to that bound before it is learned (Huber-style,
so a spike nudges the baseline instead of dragging it, while a baseline still learning its shape
is not starved of data). But a *confirmed* level shift — ``confirm_points``
consecutive out-of-band points — is adopted as the new level, so after a real change (a bigger
customer, a new model) the detector stops alerting on every point of the new normal.

Besides the score, ``expected(t)`` and ``zscore(x)`` give the baseline and the deviation in the
metric's own units, which alerts quote as evidence.

**Cold start from a prior.** A new use case has no history, so for ``grace_period`` points its
baseline protects nothing. :meth:`SeasonalBaseline.start_from` seeds a fresh baseline with a
:class:`Prior` -- a typical level, a spread and optionally a daily/weekly shape, e.g. taken with
:meth:`SeasonalBaseline.prior` from the tenant's baseline, pooled over sibling use cases with
:meth:`Prior.pooled`, or the model's list price per call -- worth ``weight`` points of history.
The baseline is then warmed up from its first point and blends the prior into its own data as a
Bayesian mean would: the k-th own point moves the level by ``1 / (weight + k)`` (never less than
``alpha_level``), so after ``weight`` points the prior counts half and it soon fades out. A
prior that was wrong by more than ``z_learn`` spreads is corrected like any level shift
(``confirm_points`` out-of-band points in a row adopt the new level).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any

from ._scoring import z_to_score
from .base import BaseDetector, Point, State, check_choice, check_float, check_int, point_value
from .registry import register

_SIGMA_FROM_MAD = 1.2533  # E|N(0,1)| = 0.7979 -> sigma = mean abs deviation * 1.2533


@dataclass(frozen=True, slots=True)
class Prior:
    """What a new baseline may assume before it has seen its own data.

    ``level``: the typical value in the metric's own units (USD per bucket, USD per call, ...).
    ``spread``: the typical deviation in the baseline's *transformed* units -- log units for
    ``transform="log"`` baselines (0.5 means "within about x1.6 either way"); wider is safer.
    ``weight``: how many points of own history the prior is worth (>= 1).
    ``hour`` / ``dow``: optional daily (24) and weekly (7) offsets in transformed units, e.g. a
    tenant's shape, so that a new use case does not page on its first working-day morning.
    """

    level: float
    spread: float
    weight: int = 12
    hour: tuple[float, ...] | None = None
    dow: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.level) or self.level < 0.0:
            raise ValueError(f"level must be a finite number >= 0, got {self.level!r}")
        if not math.isfinite(self.spread) or self.spread <= 0.0:
            raise ValueError(f"spread must be a finite number > 0, got {self.spread!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"weight must be an int >= 1, got {self.weight!r}")
        for name, size in (("hour", 24), ("dow", 7)):
            offsets = getattr(self, name)
            if offsets is not None and (
                len(offsets) != size or not all(math.isfinite(v) for v in offsets)
            ):
                raise ValueError(f"{name} must be {size} finite numbers, got {offsets!r}")

    @classmethod
    def pooled(cls, priors: Sequence[Prior], weight: int | None = None) -> Prior:
        """One prior from several (e.g. every use case of a tenant): the median level and
        spread, and the mean shape of those that have one. Robust to one odd sibling."""
        if not priors:
            raise ValueError("pooled() needs at least one prior")
        shapes = {}
        for name in ("hour", "dow"):
            known = [getattr(p, name) for p in priors if getattr(p, name) is not None]
            mean = [sum(c) / len(known) for c in zip(*known, strict=True)]
            shapes[name] = tuple(mean) if known else None
        return cls(
            level=median(p.level for p in priors),
            spread=median(p.spread for p in priors),
            weight=weight or min(p.weight for p in priors),
            **shapes,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "spread": self.spread,
            "weight": self.weight,
            "hour": None if self.hour is None else list(self.hour),
            "dow": None if self.dow is None else list(self.dow),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Prior:
        return cls(
            level=float(state["level"]),
            spread=float(state["spread"]),
            weight=int(state["weight"]),
            hour=None if state.get("hour") is None else tuple(state["hour"]),
            dow=None if state.get("dow") is None else tuple(state["dow"]),
        )


class SeasonalBaseline(BaseDetector):
    name = "seasonal_baseline"
    exact_restore = True

    def __init__(
        self,
        transform: str = "identity",
        offset: float = 0.0,
        direction: str = "both",
        seasonality: str = "weekly",
        alpha_level: float = 0.05,
        alpha_season: float = 0.1,
        alpha_scale: float = 0.05,
        min_scale: float = 1e-6,
        z_learn: float = 4.0,
        confirm_points: int = 36,
        grace_period: int = 24,
    ) -> None:
        self.transform = check_choice("transform", transform, ("identity", "log"))
        self.offset = check_float("offset", offset, min_value=0.0)
        self.direction = check_choice("direction", direction, ("up", "down", "both"))
        self.seasonality = check_choice("seasonality", seasonality, ("weekly", "daily", "none"))
        self.alpha_level = check_float(
            "alpha_level", alpha_level, min_value=0.0, max_value=1.0, min_open=True
        )
        self.alpha_season = check_float("alpha_season", alpha_season, min_value=0.0, max_value=1.0)
        self.alpha_scale = check_float(
            "alpha_scale", alpha_scale, min_value=0.0, max_value=1.0, min_open=True
        )
        self.min_scale = check_float("min_scale", min_scale, min_value=0.0, min_open=True)
        self.z_learn = check_float("z_learn", z_learn, min_value=0.0, min_open=True)
        self.confirm_points = check_int("confirm_points", confirm_points, min_value=1)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        if transform == "log" and offset == 0.0:
            self.offset = 1e-9  # log(0) guard; set a meaningful offset for sparse metrics
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        self._level: float | None = None
        self._hour = [0.0] * 24
        self._dow = [0.0] * 7
        self._scale = 0.0
        self._run = 0
        self._run_sum = 0.0
        self._prior_weight = 0  # > 0 once started from a prior (see start_from)

    # -- cold start ---------------------------------------------------------------------------
    def start_from(self, prior: Prior) -> SeasonalBaseline:
        """Seed this baseline with ``prior`` so it protects from its first point; returns self.

        Only before the baseline is warmed up on its own data: a baseline that already learned
        a few points keeps them, weighted against the prior's ``weight``."""
        if self.warmed_up:
            raise ValueError("start_from() is for a baseline that is not warmed up yet")
        y = self._fwd(prior.level)
        n, w = self._n, prior.weight
        self._level = y if self._level is None else (w * y + n * self._level) / (w + n)
        scale = max(prior.spread, self.min_scale)
        self._scale = scale if n < 2 else (w * scale + n * self._scale) / (w + n)
        if self.seasonality != "none":
            if prior.hour is not None:
                self._hour = list(prior.hour)
            if prior.dow is not None and self.seasonality == "weekly":
                self._dow = list(prior.dow)
        self._prior_weight = w
        return self

    def prior(self, weight: int = 12) -> Prior:
        """This baseline's learned level, spread and shape as a :class:`Prior` for another one
        (a tenant's or a sibling use case's baseline seeding a new use case)."""
        if self._level is None:
            raise ValueError("prior() needs a baseline that has learned something")
        weekly = self.seasonality == "weekly"
        return Prior(
            level=self._inv(self._level),
            spread=max(self._scale, self.min_scale),
            weight=weight,
            hour=tuple(self._hour) if self.seasonality != "none" else None,
            dow=tuple(self._dow) if weekly else None,
        )

    def _rate(self, alpha: float) -> float:
        """A learning rate, faster while a prior is being blended with the first own points."""
        if self._prior_weight:
            return max(alpha, 1.0 / (self._prior_weight + self._n))
        return alpha

    # -- transforms -------------------------------------------------------------------------------
    def _fwd(self, v: float) -> float:
        if self.transform == "log":
            return math.log(max(v, 0.0) + self.offset)
        return v

    def _inv(self, y: float) -> float:
        if self.transform == "log":
            return max(math.exp(y) - self.offset, 0.0)
        return y

    def _season(self, x: Point) -> tuple[float, int, int]:
        t = x.get("t")
        if t is None or self.seasonality == "none":
            return 0.0, -1, -1
        h = t.hour
        d = t.weekday() if self.seasonality == "weekly" else -1
        return self._hour[h] + (self._dow[d] if d >= 0 else 0.0), h, d

    # -- reading ----------------------------------------------------------------------------------
    def _expected_y(self, x: Point) -> float:
        return (self._level or 0.0) + self._season(x)[0]

    def expected(self, x: Point) -> float:
        """The baseline at ``x["t"]`` in the metric's own units."""
        return self._inv(self._expected_y(x))

    def zscore(self, x: Point) -> float:
        """Signed deviation of ``x`` from the baseline, in baseline standard deviations."""
        if self._level is None:
            return 0.0
        r = self._fwd(point_value(x)) - self._expected_y(x)
        return r / max(self._scale, self.min_scale)

    def score_one(self, x: Point) -> float:
        if not self.warmed_up:
            return 0.0
        z = self.zscore(x)
        if self.direction == "up":
            z = max(z, 0.0)
        elif self.direction == "down":
            z = max(-z, 0.0)
        return z_to_score(z)

    @property
    def warmed_up(self) -> bool:
        return self._n >= max(self.grace_period, 1) or self._prior_weight > 0

    # -- learning ---------------------------------------------------------------------------------
    def learn_one(self, x: Point) -> None:
        y = self._fwd(point_value(x))
        self._n += 1
        if self._level is None:
            self._level = y
            return
        season, h, d = self._season(x)
        r = y - (self._level + season)
        bound = self.z_learn * max(self._scale, self.min_scale)
        if self.warmed_up and abs(r) > bound:
            self._run += 1
            self._run_sum += r
            if self._run >= self.confirm_points:  # a confirmed level shift: adopt it
                self._level += self._run_sum / self._run
                self._run, self._run_sum = 0, 0.0
                return
            # Huber-style: an outlier nudges the level (never the seasonal shape) by a bounded step
            self._level += self._rate(self.alpha_level) * (bound if r > 0 else -bound)
            # ...and widens the scale a little, so a baseline that is still learning its shape
            # (many "outliers") is never frozen by a scale that came out too tight.
            a = self.alpha_scale / 4
            self._scale = (1 - a) * self._scale + a * bound * _SIGMA_FROM_MAD
            return
        self._run, self._run_sum = 0, 0.0
        alpha = self._rate(self.alpha_level)
        self._level += alpha * r
        r2 = r * (1 - alpha)
        if h >= 0:
            self._hour[h] += self.alpha_season * r2
        if d >= 0:
            self._dow[d] += self.alpha_season * r2 / 4
        self._recenter()
        if self._prior_weight:
            a = self._rate(self.alpha_scale)
        else:
            a = self.alpha_scale if self._n > 2 else 1.0
        self._scale = (1 - a) * self._scale + a * abs(r) * _SIGMA_FROM_MAD

    def _recenter(self) -> None:
        """Keep offsets mean-zero so the level stays the overall level."""
        for offsets in (self._hour, self._dow):
            m = sum(offsets) / len(offsets)
            if m:
                for i in range(len(offsets)):
                    offsets[i] -= m
                self._level = (self._level or 0.0) + m

    # -- state ------------------------------------------------------------------------------------
    def _get_state(self) -> State:
        return {
            "n": self._n,
            "level": self._level,
            "hour": list(self._hour),
            "dow": list(self._dow),
            "scale": self._scale,
            "run": self._run,
            "run_sum": self._run_sum,
            "prior_weight": self._prior_weight,
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._n = int(state["n"])
        self._level = None if state["level"] is None else float(state["level"])
        self._hour = [float(v) for v in state["hour"]]
        self._dow = [float(v) for v in state["dow"]]
        self._scale = float(state["scale"])
        self._run = int(state["run"])
        self._run_sum = float(state["run_sum"])
        self._prior_weight = int(state.get("prior_weight", 0))  # absent in older checkpoints


register(SeasonalBaseline.name, SeasonalBaseline)
