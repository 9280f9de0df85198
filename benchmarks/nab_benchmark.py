"""NAB benchmark for every registered spendfuse detector.

Why: ``default`` must be chosen by measurement. This runs each registered detector over a NAB
corpus exactly as NAB does (fresh detector per series, ``score_one`` before ``learn_one``,
threshold optimised per profile over the corpus) and prints the three NAB profile scores plus
single-process throughput (score_one + learn_one points per second), both wall-clock (as the
NAB harness times it) and in CPU time (robust to other load on a shared machine; this one gates
the choice of ``default``, which needs >= 20,000 points/s).

    python benchmarks/nab_benchmark.py --nab ../shared/nab [--detectors a,b] [--jobs 2]

The NAB data and its scorer (``nab_score.py``) are not part of spendfuse; pass their directory.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from spendfuse.detectors import aliases, create, discover

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_NAB = REPO_ROOT.parent / "shared" / "nab"
MIN_POINTS_PER_SECOND = 20_000
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def load_nab_score(nab_dir: Path) -> ModuleType:
    path = nab_dir / "nab_score.py"
    if not path.exists():
        raise SystemExit(f"no nab_score.py under {nab_dir} (use --nab PATH)")
    spec = importlib.util.spec_from_file_location("nab_score", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nab_score"] = mod
    spec.loader.exec_module(mod)
    return mod


class NabAdapter:
    """NAB calls ``score_one(ts, value)`` once per row; spendfuse scores then learns."""

    __slots__ = ("_learn", "_score")

    def __init__(self, spec: str | dict[str, Any]) -> None:
        det = create(spec)
        self._score = det.score_one
        self._learn = det.learn_one

    def score_one(self, ts: datetime, value: float) -> float:
        x = {"t": ts, "value": value}
        s = self._score(x)
        self._learn(x)
        return s


def run(
    nab: ModuleType, nab_dir: Path, spec: str | dict[str, Any], jobs: int, subset: str | None
) -> dict[str, Any]:
    res = nab.score_detector(
        lambda: NabAdapter(spec),
        data_dir=str(nab_dir / "data"),
        labels_path=str(nab_dir / "labels" / "combined_windows.json"),
        profiles_path=str(nab_dir / "config" / "profiles.json")
        if (nab_dir / "config" / "profiles.json").exists()
        else None,
        subset=subset,
        n_jobs=jobs,
    )
    out = {p: res["profiles"][p]["score"] for p in PROFILES}
    out["threshold"] = res["profiles"]["standard"]["threshold"]
    out["points_per_second"] = res["n_rows"] / max(res["detector_seconds"], 1e-9)
    return out


def cpu_points_per_second(series: list[Any], spec: str | dict[str, Any], rows: int) -> float:
    """score_one + learn_one throughput in CPU time of this process (one core), over the first
    ``rows`` rows of the corpus. Unlike the wall-clock figure it is not diluted by whatever else
    runs on the machine, which on a shared host can halve the wall-clock rate."""
    done, spent = 0, 0.0
    for s in series:
        points = [
            {"t": t, "value": v} for t, v in zip(s.timestamps, s.values.tolist(), strict=True)
        ]
        points = points[: rows - done]
        det = create(spec)
        score, learn = det.score_one, det.learn_one
        t0 = time.process_time()
        for x in points:
            score(x)
            learn(x)
        spent += time.process_time() - t0
        done += len(points)
        if done >= rows:
            break
    return done / max(spent, 1e-9)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--nab",
        type=Path,
        default=Path(os.environ.get("NAB_DIR", DEFAULT_NAB)),
        help=f"NAB directory with nab_score.py, data/, labels/ (default {DEFAULT_NAB})",
    )
    ap.add_argument(
        "--detectors", default="", help="comma-separated names (default: every registered detector)"
    )
    ap.add_argument(
        "--jobs", type=int, default=1, help="processes; points/s is per process either way"
    )
    ap.add_argument("--subset", default=None, help="NAB subset: all | dev | holdout")
    ap.add_argument(
        "--cpu-rows",
        type=int,
        default=30_000,
        help="rows timed in CPU time for the throughput gate (default 30000)",
    )
    a = ap.parse_args(argv)

    nab_dir = a.nab.resolve()
    nab = load_nab_score(nab_dir)
    names = [n for n in a.detectors.split(",") if n] or discover()
    corpus = nab.load_corpus(
        str(nab_dir / "data"), str(nab_dir / "labels" / "combined_windows.json"), a.subset
    )
    rows = []
    for name in names:
        r = run(nab, nab_dir, name, a.jobs, a.subset)
        r["cpu_points_per_second"] = cpu_points_per_second(corpus, name, a.cpu_rows)
        rows.append((name, r))
        print(
            f"{name}: "
            + "  ".join(f"{p}={r[p]:.2f}" for p in PROFILES)
            + f"  {r['points_per_second']:,.0f} pts/s wall"
            + f"  {r['cpu_points_per_second']:,.0f} pts/s cpu",
            file=sys.stderr,
            flush=True,
        )

    w = max(len("detector"), *(len(n) for n in names))
    print()
    print(f"| {'detector':<{w}} | standard | low_FP | low_FN | pts/s wall | pts/s cpu |")
    print(f"|{'-' * (w + 2)}|----------|--------|--------|------------|-----------|")
    for name, r in rows:
        print(
            f"| {name:<{w}} | {r['standard']:8.2f} | {r['reward_low_FP_rate']:6.2f} | "
            f"{r['reward_low_FN_rate']:6.2f} | {r['points_per_second']:10,.0f} | "
            f"{r['cpu_points_per_second']:9,.0f} |"
        )
    # gate on CPU-time throughput: wall-clock is diluted by other load on a shared host
    fast = [(n, r) for n, r in rows if r["cpu_points_per_second"] >= MIN_POINTS_PER_SECOND]
    if fast:
        best = max(fast, key=lambda nr: nr[1]["standard"])[0]
        current = aliases().get("default")
        note = "" if best == current else "  <-- update DEFAULT in detectors/__init__.py"
        print(
            f"\nbest (>= {MIN_POINTS_PER_SECOND:,} pts/s, by standard score): {best}; "
            f"default -> {current}{note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
