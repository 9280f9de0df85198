"""Synthetic streams for the detector tests (no external data)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2024, 3, 4, tzinfo=UTC)


def seasonal_stream(
    n: int,
    *,
    seed: int = 7,
    step_minutes: int = 5,
    base: float = 100.0,
    amplitude: float = 20.0,
    noise: float = 2.0,
    spikes: dict[int, float] | None = None,
) -> list[dict[str, Any]]:
    """Daily sine + Gaussian noise, 5-minute points; ``spikes`` adds ``{index: delta}``."""
    rng = random.Random(seed)
    spikes = spikes or {}
    out = []
    for i in range(n):
        t = T0 + timedelta(minutes=step_minutes * i)
        day = (t.hour * 60 + t.minute) / 1440.0
        v = base + amplitude * math.sin(2 * math.pi * day) + rng.gauss(0.0, noise)
        out.append({"t": t, "value": v + spikes.get(i, 0.0)})
    return out


def feed(det: Any, points: list[dict[str, Any]]) -> list[float]:
    """Prequential run: score each point, then learn it."""
    scores = []
    for x in points:
        scores.append(det.score_one(x))
        det.learn_one(x)
    return scores
