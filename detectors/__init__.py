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

* ``lean_fusion`` -- ``fusion`` cut down to the parts that hold out of sample, three knobs;
* ``fusion`` -- robust residuals, rank tail probabilities, a time-of-day residual scale,
  multi-scale anomaly likelihood and alarm hygiene (custom; 19 knobs, fit to the NAB dev subset);
* ``session_quantile`` -- the learned P99.9 of a use case's session costs (session outliers);
* ``page_hinkley`` -- river ``drift.PageHinkley`` on standardised values (level shifts);
* ``holt_winters`` -- river ``time_series.HoltWinters`` forecast residual z-score;
* ``zscore`` -- river ``stats.Var`` over ``utils.Rolling`` (baseline);
* ``count_shift`` -- a count (calls per minute) against its seasonal expected count over
  trailing windows, judged by deviance and the baseline's own error (the volume watch);
* ``rate_shift`` -- a Poisson CUSUM for a rate that doubles; ``seasonal_baseline`` -- level,
  hour and weekday offsets, judged by z and ratio (the spend watch);
* ``unit_shift`` -- a CUSUM on log value per call, weighed call by call (the unit-cost and
  token watches: a 2x shift alarms within about a dozen calls).

``default`` is an alias chosen by measurement with ``benchmarks/nab_benchmark.py``: among the
detectors scoring >= 20,000 points/s, the one with the best *held-out* standard NAB score per
file (median over files, each scored at a threshold chosen on the other files).
"""

from __future__ import annotations

from . import count_shift as count_shift  # registers it for rule files
from . import fusion, holt_winters, lean_fusion, page_hinkley, zscore
from . import rate_shift as rate_shift  # registers it for rule files
from . import seasonal_baseline as seasonal_baseline  # registers it for rule files
from . import unit_shift as unit_shift  # registers it for rule files
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

#: Measured with benchmarks/nab_benchmark.py (NAB dev subset, held out); see that script's output.
DEFAULT = "lean_fusion"
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
    "lean_fusion",
    "list_detectors",
    "page_hinkley",
    "register",
    "resolve",
    "zscore",
]
