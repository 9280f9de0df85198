"""Plain-data (de)serialisation of the few river objects the detectors use.

Why: river objects are meant to be pickled, which spendfuse forbids for checkpoints. These
helpers copy the *exact* internal fields (not a replay of the window, which would reorder the
floating-point updates and change later scores) so a restored detector is bit-identical.
Rust-backed river statistics (``EWMean``, ``EWVar``) expose no internals and are not used.
"""

from __future__ import annotations

from typing import Any

from river import stats, utils


def var_to_state(v: stats.Var) -> dict[str, float]:
    return {"n": v.mean.n, "mean": v.mean._mean, "S": v._S}


def var_from_state(s: dict[str, Any], ddof: int = 1) -> stats.Var:
    v = stats.Var(ddof=ddof)
    v.mean = stats.Mean._from_state(n=s["n"], mean=s["mean"])
    v._S = s["S"]
    return v


def rolling_var_to_state(r: utils.Rolling) -> dict[str, Any]:
    return {"var": var_to_state(r.obj), "window": [args[0] for args, _ in r.window]}


def rolling_var_from_state(s: dict[str, Any], window_size: int) -> utils.Rolling:
    r = new_rolling_var(window_size)
    r.obj = var_from_state(s["var"])
    r.window.extend(((float(v),), {}) for v in s["window"])
    return r


def new_rolling_var(window_size: int) -> utils.Rolling:
    return utils.Rolling(stats.Var, window_size=window_size)
