"""Online anomaly detectors for spend streams.

Usage::

    from spendfuse.detectors import create, from_state
    det = create("default")              # or create({"name": "fusion", "params": {...}})
    x = {"t": ts, "value": cost}
    s = det.score_one(x)                 # in [0, 1], read-only
    det.learn_one(x)
    blob = orjson.dumps(det.to_state())  # plain data, never pickle
    det2 = from_state(orjson.loads(blob))

Registered detectors (``list_detectors()``):

* ``fusion`` -- robust residuals, rank tail probabilities, a time-of-day residual scale,
  multi-scale anomaly likelihood and alarm hygiene (custom; the best on NAB by a wide margin);
* ``page_hinkley`` -- river ``drift.PageHinkley`` on standardised values (level shifts);
* ``holt_winters`` -- river ``time_series.HoltWinters`` forecast residual z-score;
* ``zscore`` -- river ``stats.Var`` over ``utils.Rolling`` (baseline).

``default`` is an alias chosen by measurement with ``benchmarks/nab_benchmark.py``: the
detector with the best standard NAB score among those scoring >= 20,000 points/s.
"""

from __future__ import annotations

from . import fusion, holt_winters, page_hinkley, zscore
from . import seasonal_baseline as seasonal_baseline  # registers it for rule files
from .base import BaseDetector, Detector, Point, State
from .registry import (
    alias,
    aliases,
    create,
    discover,
    from_state,
    list_detectors,
    register,
    resolve,
)

#: Measured with benchmarks/nab_benchmark.py (NAB dev subset); see that script's output.
DEFAULT = "fusion"
alias("default", DEFAULT)

__all__ = [
    "DEFAULT",
    "BaseDetector",
    "Detector",
    "Point",
    "State",
    "alias",
    "aliases",
    "create",
    "discover",
    "from_state",
    "fusion",
    "holt_winters",
    "list_detectors",
    "page_hinkley",
    "register",
    "resolve",
    "zscore",
]
