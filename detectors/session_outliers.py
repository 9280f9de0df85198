"""Session (trace) cost outliers: a running session costlier than nearly every session before it.

Why: a runaway agent burns money inside *one* session long before the use case's spend rate
moves. Each use case learns, online, a high quantile (default P99.9) of what its finished
sessions cost, and a session still running is flagged the moment its running cost passes it --
within the event that crossed it, fleet-wide, with no change to the agent.

Two pieces:

* ``session_quantile`` (registered detector): a point is ``{"t", "value": a session's cost in
  USD}``; ``learn_one`` learns a finished session, ``score_one`` is 0.5 exactly at the learned
  quantile and rises towards 1 past it, ``threshold()`` is that quantile in USD.
* :class:`SessionOutliers`: the per-use-case tracker a rule holds. ``observe(trace_id, t, cost)``
  adds an event's cost to its session's running total, finishes sessions idle for ``idle_s``
  (event time) and learns their cost, and returns a :class:`SessionFlag` once per session when
  the running cost passes the quantile.

How the quantile is learned: costs are skewed over orders of magnitude, so the detector keeps an
exponentially fading histogram of *log* cost in bins of ``bin_width`` (0.05 = 5 % relative
resolution), clamped to [``floor_usd``, 1e6] -- at most ~370 bins, whatever the traffic. Fading
(``half_life`` sessions) lets the quantile follow a use case whose sessions get dearer. This is
what river's ``stats.Quantile`` does conceptually, but that one is Rust-backed and its state is
an opaque binary blob, which spendfuse's plain-data checkpoints forbid (see ``_river_state``).
A flagged session is learned capped just past the threshold, so a burst of runaways does not
teach the quantile that runaways are normal -- unless flags stop being rare: when more than
``max_flag_rate`` of recently finished sessions were flagged (50 times what P99.9 allows), the
use case's sessions have simply become dearer (a new model, a longer prompt); flagging is then
paused and sessions are learned as they are until the quantile has caught up, rather than
stopping one session in ten.
"""

from __future__ import annotations

import math
from bisect import insort
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .base import BaseDetector, Point, State, check_float, check_int, clip01, point_value
from .registry import register

_CEILING_USD = 1e6
_RESCALE_AT = 1e100
_CAP_FACTOR = 1.25  # a flagged session is learned at most this far past the threshold
_FLAG_RATE_ALPHA = 1.0 / 200  # the flag rate is a mean over about the last 200 sessions


class SessionQuantile(BaseDetector):
    name = "session_quantile"

    def __init__(
        self,
        q: float = 0.999,
        bin_width: float = 0.05,
        half_life: int = 5000,
        floor_usd: float = 1e-4,
        grace_period: int = 500,
    ) -> None:
        self.q = check_float("q", q, min_value=0.5, max_value=1.0, max_open=True)
        self.bin_width = check_float("bin_width", bin_width, min_value=0.001, max_value=1.0)
        self.half_life = check_int("half_life", half_life, min_value=10)
        self.floor_usd = check_float("floor_usd", floor_usd, min_value=1e-9, max_value=1.0)
        self.grace_period = check_int("grace_period", grace_period, min_value=0)
        self._fade = 0.5 ** (1.0 / self.half_life)
        self._log_floor = math.log(self.floor_usd)
        self._reset()

    # -- state -------------------------------------------------------------------------------
    def _reset(self) -> None:
        self._n = 0
        # bin index -> weight, in units of ``self._inc`` (fading without touching every bin)
        self._bins: dict[int, float] = {}
        self._order: list[int] = []  # the bins' indexes, ascending (what the quantile walks)
        self._inc = 1.0
        self._total = 0.0
        self._cached: tuple[int, float | None] = (-1, None)  # (n, threshold): a cache

    def _get_state(self) -> State:
        return {
            "n": self._n,
            "inc": self._inc,
            "total": self._total,
            "bins": [[k, w] for k, w in self._bins.items()],  # in insertion order: same sums
        }

    def _set_state(self, state: dict[str, Any]) -> None:
        self._reset()
        self._n = int(state["n"])
        self._inc = float(state["inc"])
        self._total = float(state["total"])
        self._bins = {int(k): float(w) for k, w in state["bins"]}
        self._order = sorted(self._bins)

    # -- helpers -----------------------------------------------------------------------------
    def _bin(self, usd: float) -> int:
        v = min(max(usd, self.floor_usd), _CEILING_USD)
        return int((math.log(v) - self._log_floor) // self.bin_width)

    def _usd(self, k: float) -> float:
        return math.exp(self._log_floor + k * self.bin_width)

    @property
    def sessions(self) -> int:
        return self._n

    @property
    def warmed_up(self) -> bool:
        return self._n >= max(self.grace_period, 1)

    def tail(self, usd: float) -> float:
        """Faded share of learned sessions that cost at least ``usd`` (1 before any learning).

        Within a bin the weight is spread uniformly in log cost; past the costliest bin the tail
        keeps shrinking like 1 / (n + 1) times the ratio to that maximum, so a session ten times
        dearer than any before still outranks one twice as dear."""
        if self._total <= 0.0:
            return 1.0
        k = self._bin(usd)
        pos = math.log(min(max(usd, self.floor_usd), _CEILING_USD)) - self._log_floor
        frac = pos / self.bin_width - k  # position inside bin k, in [0, 1)
        above = sum(w for b, w in self._bins.items() if b > k)
        above += self._bins.get(k, 0.0) * (1.0 - frac)
        p = above / self._total
        if p <= 0.0:
            top = self._order[-1]
            ratio = usd / self._usd(top + 1)
            p = 1.0 / (self._n + 1.0) / max(ratio, 1.0)
        return max(p, 1e-300)

    def threshold(self) -> float | None:
        """The learned ``q`` quantile of session cost in USD (None before ``grace_period``)."""
        if not self.warmed_up or self._total <= 0.0:
            return None
        if self._cached[0] == self._n:
            return self._cached[1]
        # never below the costliest of the first 1/(1-q) sessions: with fewer sessions than
        # that, P99.9 is not known yet and "dearer than every session so far" is the honest bar
        target = max(1.0 - self.q, 1.0 / self._n) * self._total
        above = 0.0
        value = self._usd(self._order[-1] + 1)
        for k in reversed(self._order):
            w = self._bins[k]
            if above + w >= target:
                frac = (target - above) / w  # interpolate in log cost inside the bin
                value = self._usd(k + 1 - frac)
                break
            above += w
        self._cached = (self._n, value)
        return value

    # -- protocol ----------------------------------------------------------------------------
    def score_one(self, x: Point) -> float:
        """0 in grace; ``-log10(tail) / (2 * -log10(1 - q))``: 0.5 at the quantile."""
        if not self.warmed_up:
            return 0.0
        p = self.tail(point_value(x))
        return clip01(-math.log10(p) / (2.0 * -math.log10(1.0 - self.q)))

    def learn_one(self, x: Point) -> None:
        self.learn_cost(point_value(x))

    def learn_cost(self, usd: float) -> int | None:
        """Learn one session of cost ``usd``: the bin it went to, or None when every bin was
        rescaled (what :meth:`refresh_state` needs to know)."""
        self._inc /= self._fade
        k = self._bin(usd)
        weight = self._bins.get(k)
        if weight is None:
            insort(self._order, k)
            weight = 0.0
        self._bins[k] = weight + self._inc
        self._total += self._inc
        self._n += 1
        if self._inc > _RESCALE_AT:  # rescale to keep the numbers finite; drop faded-out bins
            inc = self._inc
            self._bins = {b: w / inc for b, w in self._bins.items() if w / inc > 1e-9}
            self._order = sorted(self._bins)
            self._total = sum(self._bins.values())
            self._inc = 1.0
            return None
        return k

    def refresh_state(self, saved: State, bins_at: dict[int, int], k: int) -> None:
        """Bring ``saved`` -- this detector's :meth:`to_state` from before it learned one more
        session, into bin ``k`` (:meth:`learn_cost`) -- up to date in place: what
        ``to_state()`` gives now, without rebuilding the whole histogram. ``bins_at`` is each
        bin's index in the saved ``bins`` list (kept up to date here too)."""
        state = saved["state"]
        state["n"], state["inc"], state["total"] = self._n, self._inc, self._total
        bins = state["bins"]
        at = bins_at.get(k)
        if at is None:
            bins_at[k] = len(bins)
            bins.append([k, self._bins[k]])  # a new bin: the last one inserted
        else:
            bins[at][1] = self._bins[k]


register(SessionQuantile.name, SessionQuantile)


@dataclass(frozen=True, slots=True)
class SessionFlag:
    """A running session whose cost passed its use case's learned quantile."""

    trace_id: str
    cost_usd: float  # running cost when flagged
    threshold_usd: float  # the learned quantile it passed
    q: float  # which quantile (0.999 = P99.9)
    sessions_learned: int  # how many finished sessions the quantile was learned from
    started_at: datetime  # event time of the session's first event
    flagged_at: datetime  # event time of the event that crossed the threshold
    steps: int = 0  # events of the session so far, the crossing one included


class SessionOutliers:
    """Per-use-case running session costs against the learned session-cost quantile.

    Bounded: at most ``max_open`` sessions are tracked (the least recently active one is
    finished early when a new one would exceed it). ``min_cost_usd`` keeps cheap sessions from
    ever being flagged, however odd they are: the flag may stop a user's session, and a few
    cents never justify that.

    State is plain data, and :meth:`bind` works on it *in place*: a rule that observes every
    event keeps the tracker's state in its use case's state dict, and only a finished session
    (which teaches the quantile) rewrites the histogram; an ordinary event touches one list.
    """

    def __init__(
        self,
        q: float = 0.999,
        idle_s: float = 900.0,
        max_open: int = 5000,
        min_cost_usd: float = 0.05,
        grace_period: int = 500,
        half_life: int = 5000,
        max_flag_rate: float = 0.05,
    ) -> None:
        self.idle_s = check_float("idle_s", idle_s, min_value=1.0)
        self.max_flag_rate = check_float(
            "max_flag_rate", max_flag_rate, min_value=0.0, max_value=1.0, min_open=True
        )
        self.max_open = check_int("max_open", max_open, min_value=1)
        self.min_cost_usd = check_float("min_cost_usd", min_cost_usd, min_value=0.0)
        self._q_params = {"q": q, "grace_period": grace_period, "half_life": half_life}
        quantile = SessionQuantile(**self._q_params)  # validates q, grace_period, half_life
        self._quantile: SessionQuantile | None = quantile
        self._live: _LiveQuantile | None = None
        # trace -> [first_ms, last_ms, cost, flagged, steps]; order = least recently active
        self._state: dict[str, Any] = {
            "params": self.params(),
            "quantile": quantile.to_state(),
            "thr": None,  # the quantile's threshold, kept so an event never loads the histogram
            "open": {},
            "flag_rate": 0.0,  # share of recently finished sessions that were flagged
        }

    @classmethod
    def bind(cls, state: dict[str, Any], **params: Any) -> SessionOutliers:
        """A tracker working on ``state`` in place (filled in when empty, with ``params``)."""
        if not state:
            state.update(cls(**params).to_state())
        return cls.from_state(state)

    def params(self) -> dict[str, Any]:
        return {
            "q": self._q_params["q"],
            "idle_s": self.idle_s,
            "max_open": self.max_open,
            "min_cost_usd": self.min_cost_usd,
            "grace_period": self._q_params["grace_period"],
            "half_life": self._q_params["half_life"],
            "max_flag_rate": self.max_flag_rate,
        }

    @property
    def quantile(self) -> SessionQuantile:
        """The learned quantile (loaded from the state only when a session finishes; the one
        that saved that state when it is still in memory, see :class:`_LiveQuantile`)."""
        if self._quantile is None:
            saved = self._state["quantile"]
            live = _LIVE.get(id(saved))
            if live is not None and live.saved is saved:
                self._quantile, self._live = live.quantile, live
            else:
                self._quantile = SessionQuantile.from_state(saved)
        return self._quantile

    @property
    def paused(self) -> bool:
        """Flags are paused while too many recent sessions were flagged (costs shifted)."""
        return self._state["flag_rate"] > self.max_flag_rate

    def threshold(self) -> float | None:
        """The session cost (USD) above which a session is flagged (None while learning)."""
        t = self._state["thr"]
        return None if t is None else max(t, self.min_cost_usd)

    @property
    def open_sessions(self) -> int:
        return len(self._state["open"])

    def observe(self, trace_id: str, t: datetime, cost_usd: float) -> SessionFlag | None:
        """Add one event's cost to its session; a flag the first time the session passes."""
        ms = int(t.timestamp() * 1000)
        self._finish_idle(ms)
        opened = self._state["open"]
        cost = cost_usd if math.isfinite(cost_usd) and cost_usd > 0.0 else 0.0
        entry = opened.pop(trace_id, None)
        if entry is None:
            entry = [ms, ms, 0.0, False, 0]
            while len(opened) >= self.max_open:
                self._finish(next(iter(opened)))
        entry[1] = max(entry[1], ms)
        entry[2] += cost
        entry[4] += 1
        opened[trace_id] = entry  # re-inserted: now the most recently active
        limit = self.threshold()
        if entry[3] or limit is None or entry[2] <= limit or self.paused:
            return None
        entry[3] = True
        return SessionFlag(
            trace_id=trace_id,
            cost_usd=entry[2],
            threshold_usd=limit,
            q=self._q_params["q"],
            sessions_learned=self.quantile.sessions,
            started_at=datetime.fromtimestamp(entry[0] / 1000, tz=t.tzinfo),
            flagged_at=t,
            steps=int(entry[4]),
        )

    def running_cost(self, trace_id: str) -> float | None:
        entry = self._state["open"].get(trace_id)
        return None if entry is None else entry[2]

    def _finish_idle(self, now_ms: int) -> None:
        horizon = now_ms - self.idle_s * 1000
        opened = self._state["open"]
        while opened:
            trace, entry = next(iter(opened.items()))
            if entry[1] > horizon:
                break
            self._finish(trace)

    def _finish(self, trace: str) -> None:
        first_ms, _, cost, flagged, *_ = self._state["open"].pop(trace)
        st = self._state
        st["flag_rate"] += (float(flagged) - st["flag_rate"]) * _FLAG_RATE_ALPHA
        quantile = self.quantile
        limit = quantile.threshold()
        if limit is not None and not self.paused:
            # capped just past the threshold: it still counts as one session above the quantile
            # (the quantile depends on counts, so it stays unbiased), but never drags it up to
            # the runaway's own cost
            cost = min(cost, _CAP_FACTOR * limit)
        k = quantile.learn_cost(point_value({"t": first_ms, "value": cost}))
        self._save(quantile, k)
        st["thr"] = quantile.threshold()

    def _save(self, quantile: SessionQuantile, k: int | None) -> None:
        """``state["quantile"] = quantile.to_state()``, updated in place when this tracker
        saved it itself and only bin ``k`` changed (the histogram is not rebuilt per session)."""
        st = self._state
        live = self._live
        if k is not None and live is not None and live.saved is st["quantile"]:
            quantile.refresh_state(live.saved, live.bins_at, k)
            _keep_live(live)
            return
        if live is not None:
            _LIVE.pop(id(live.saved), None)  # that state is replaced: forget it
        saved = st["quantile"] = quantile.to_state()
        bins_at = {b: i for i, (b, _) in enumerate(saved["state"]["bins"])}
        live = self._live = _LiveQuantile(saved, quantile, bins_at)
        _keep_live(live)

    # -- plain-data state ----------------------------------------------------------------------
    def to_state(self) -> State:
        """The tracker's state: the very dict it works on (see :meth:`bind`)."""
        return self._state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SessionOutliers:
        """A tracker over ``state`` (no copy: it keeps working on that dict).

        Called at every event of a traced session: the parameters are validated once per
        distinct set (a validated tracker is kept as the template), not per event."""
        params = state["params"]
        key = tuple(params.items())
        template = _TEMPLATES.get(key)
        if template is None:
            template = cls(**params)
            if len(_TEMPLATES) >= 256:
                _TEMPLATES.clear()
            _TEMPLATES[key] = template
        obj = cls.__new__(cls)
        obj.__dict__.update(template.__dict__)
        obj._state = state
        obj._quantile = None
        obj._live = None
        return obj


_TEMPLATES: dict[tuple[Any, ...], SessionOutliers] = {}
"""Validated trackers by their parameters: what :meth:`SessionOutliers.from_state` copies."""


@dataclass(slots=True)
class _LiveQuantile:
    """A learned quantile still in memory with the plain-data state it saved (``saved``, the
    very dict in the tracker's state) and where each bin sits in that state's ``bins`` list.

    Why: a tracker is bound to its state at every event, and a finishing session used to load
    the histogram from plain data and save it back whole. The detector that saved a state is
    exactly what loading it gives (same bins, in the same order, same floats), so while the
    state's ``quantile`` is still the dict it saved, it is used as is and that dict is updated
    in place. A state saved elsewhere (a restored checkpoint) is a different dict: loaded.
    """

    saved: dict[str, Any]
    quantile: SessionQuantile
    bins_at: dict[int, int]


_LIVE_MAX = 512  # use cases whose session quantile stays in memory (least recently saved go)
_LIVE: dict[int, _LiveQuantile] = {}
"""Live quantiles by the ``id`` of the state they saved (the entry holds that state, so the id
is not reused while it is here)."""


def _keep_live(live: _LiveQuantile) -> None:
    """``live`` is now the most recently saved; the least recently saved past the bound go."""
    _LIVE.pop(id(live.saved), None)
    _LIVE[id(live.saved)] = live
    while len(_LIVE) > _LIVE_MAX:
        del _LIVE[next(iter(_LIVE))]
