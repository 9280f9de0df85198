"""Small numeric helpers shared by the z-score style detectors (dependency-free, fast)."""

from __future__ import annotations

import math

_SQRT2 = math.sqrt(2.0)


def z_to_score(z: float, half_at: float = 3.0) -> float:
    """Map a z-score to [0, 1) through its two-sided Gaussian tail probability p.

    ``L = -log10(p)`` and the score is ``L / (L + half_at)``: monotone, 0.5 at p = 10**-half_at,
    and never exactly 1, so extreme points stay ranked instead of tying at a clipped 1.0
    (ties make NAB-style threshold search coarse).
    """
    p = math.erfc(abs(z) / _SQRT2)
    lg = -math.log10(p) if p > 1e-300 else 300.0
    return lg / (lg + half_at)


def safe_z(value: float, mean: float, var: float, min_std: float = 1e-9) -> float:
    """(value - mean) / std, with a floor on std so constant history does not divide by 0."""
    sd = math.sqrt(var) if var > 0.0 else 0.0
    if sd < min_std:
        sd = min_std + 1e-6 * abs(mean)
    return (value - mean) / sd
