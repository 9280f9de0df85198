"""NAB benchmark for every registered spendfuse detector: in-sample and held out.

Why: ``default`` must be chosen by measurement, and by a measurement that rewards detectors that
hold on data they never saw. Each detector runs over a NAB corpus exactly as NAB does (fresh
detector per series, ``score_one`` before ``learn_one``). Then, besides NAB's in-sample score
(one threshold per profile optimised over the very files it is scored on), it prints:

* **leave one file out (LOFO)**: for each file, the threshold is chosen on the *other* files and
  only then is the left-out file scored at it. Printed: the pooled score (every file scored at a
  threshold it did not choose, normalised over the corpus as NAB does) and the spread of the
  per-file scores (median, quartiles, worst), beside the per-file spread in sample;
* **leave one category out (LOCO)**: the same with a whole NAB category held out at a time;
* **false alarms on anomaly-free series**: alarms per 1,000 points, at the standard threshold
  chosen on the NAB corpus, on synthetic series with no anomaly at all (Gaussian and AR(1) noise,
  a random walk, Poisson counts with lognormal bursts, a 30-minute series with a working week,
  a sparse hourly series). A detector fit to NAB's dev files tends to fire on shapes it never
  saw; this shows how often;
* throughput: score_one + learn_one points per second, wall-clock (as the NAB harness times it)
  and in CPU time (robust to other load on a shared machine; the gate for ``default`` is
  >= 20,000 points/s in CPU time).

    python benchmarks/nab_benchmark.py --nab PATH/TO/nab [--detectors a,b] [--jobs 2]

The NAB data and its scorer (``nab_score.py``) are not part of spendfuse; pass their directory.
``default`` is the fast detector with the best *median held-out file score* (LOFO, standard):
the typical series it has not seen, rather than the sum that a few long files dominate.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from spendfuse.detectors import aliases, create, discover

MIN_POINTS_PER_SECOND = 20_000
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
SHORT = {"standard": "std", "reward_low_FP_rate": "lowFP", "reward_low_FN_rate": "lowFN"}


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


class HeldOut:
    """Scores at thresholds chosen without the held-out part (files or categories)."""

    def __init__(
        self,
        nab: ModuleType,
        corpus: list[Any],
        scores: dict[str, np.ndarray],
        profiles: dict[str, Any],
    ) -> None:
        self.nab, self.corpus, self.scores, self.profiles = nab, corpus, scores, profiles

    def threshold(self, train: list[Any], profile: str) -> float:
        curve = self.nab.score_curve(train, self.scores, self.profiles[profile])
        return float(curve.thresholds[int(np.argmax(curve.raw))])

    def raw(self, series: Any, profile: str, threshold: float) -> float:
        prof = self.profiles[profile]
        return self.nab.series_breakdown(series, self.scores[series.relpath], prof, threshold)[
            "raw"
        ]

    def normalised(self, part: list[Any], profile: str, raw: float) -> float | None:
        prof = self.profiles[profile]
        null, perfect = self.nab.null_raw(part, prof), self.nab.perfect_raw(part, prof)
        return None if perfect == null else self.nab.normalise(raw, null, perfect)

    def in_sample(self, profile: str) -> tuple[float, list[float]]:
        """NAB's score and the per-file scores, all at the corpus-optimal threshold."""
        thr = self.threshold(self.corpus, profile)
        raws = {s.relpath: self.raw(s, profile, thr) for s in self.corpus}
        pooled = self.normalised(self.corpus, profile, sum(raws.values()))
        files = [self.normalised([s], profile, raws[s.relpath]) for s in self.corpus]
        return pooled or 0.0, [f for f in files if f is not None]

    def leave_out(
        self, groups: dict[str, list[Any]], profile: str
    ) -> tuple[float, dict[str, float]]:
        """Pooled held-out score, and each group's own normalised score at its held-out
        threshold (the threshold is fixed on the other groups before the group is scored)."""
        total, per = 0.0, {}
        for key, part in groups.items():
            ids = {id(s) for s in part}
            thr = self.threshold([s for s in self.corpus if id(s) not in ids], profile)
            raw = sum(self.raw(s, profile, thr) for s in part)
            total += raw
            score = self.normalised(part, profile, raw)
            if score is not None:
                per[key] = score
        return self.normalised(self.corpus, profile, total) or 0.0, per


SYNTHETIC_KINDS = (
    "gaussian",
    "ar1",
    "random_walk",
    "bursty_counts",
    "weekly_30min",
    "sparse_hourly",
)


def synthetic_series(kind: str, seed: int, n: int = 6000) -> list[dict[str, Any]]:
    """An anomaly-free series of ``kind`` (see the module docstring), deterministic per seed."""
    rng = np.random.default_rng(seed)
    step = 5
    if kind == "gaussian":
        v = rng.normal(50.0, 5.0, n)
    elif kind == "ar1":
        v = np.zeros(n)
        noise = rng.normal(0.0, 1.0, n)
        for i in range(1, n):
            v[i] = 0.95 * v[i - 1] + noise[i]
    elif kind == "random_walk":
        v = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    elif kind == "bursty_counts":
        v = rng.poisson(np.exp(rng.normal(np.log(20.0), 0.5, n))).astype(float)
    elif kind == "weekly_30min":
        step = 30
        i = np.arange(n)
        hour, day = (i * step / 60) % 24, (i * step // 1440) % 7
        work = np.sin(2 * np.pi * (hour - 6) / 24).clip(0.0) * np.where(day >= 5, 0.6, 1.0)
        v = 1000.0 + 600.0 * work + rng.normal(0.0, 40.0, n)
    elif kind == "sparse_hourly":
        step = 60
        v = np.where(rng.random(n) < 0.3, rng.lognormal(0.0, 1.0, n), 0.0)
    else:
        raise ValueError(kind)
    t0 = datetime(2024, 1, 1)
    return [{"t": t0 + timedelta(minutes=step * i), "value": float(x)} for i, x in enumerate(v)]


def false_alarms_per_1000(
    spec: str | dict[str, Any], threshold: float, seeds: int = 2
) -> dict[str, float]:
    """Alarms (score >= threshold) per 1,000 points after NAB's 15 % probation, per kind."""
    out = {}
    for kind in SYNTHETIC_KINDS:
        alarms = scored = 0
        for seed in range(1, seeds + 1):
            det = create(spec)
            points = synthetic_series(kind, seed)
            probation = int(0.15 * len(points))
            for i, x in enumerate(points):
                s = det.score_one(x)
                det.learn_one(x)
                if i >= probation:
                    scored += 1
                    alarms += s >= threshold
        out[kind] = 1000.0 * alarms / scored
    return out


def spread(values: list[float]) -> str:
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else values * 3
    return f"median {q[1]:6.1f}  q1 {q[0]:6.1f}  q3 {q[2]:6.1f}  worst {min(values):7.1f}"


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


def parse_spec(text: str) -> str | dict[str, Any]:
    """``name`` or ``name:param=value;param=value`` (values as JSON: ``history=1000``,
    ``avg_windows=[30]``), for measuring one knob moved from its default."""
    name, _, rest = text.partition(":")
    if not rest:
        return name
    params = {}
    for item in rest.split(";"):
        key, _, value = item.partition("=")
        params[key.strip()] = json.loads(value)
    return {"name": name, "params": params}


def evaluate(
    nab: ModuleType,
    nab_dir: Path,
    corpus: list[Any],
    name: str,
    jobs: int,
    cpu_rows: int,
) -> dict[str, Any]:
    spec = parse_spec(name)
    scores, secs, _ = nab.run_detector(lambda: NabAdapter(spec), corpus, n_jobs=jobs)
    profiles_path = nab_dir / "config" / "profiles.json"
    profiles = nab.load_profiles(str(profiles_path) if profiles_path.exists() else None)
    h = HeldOut(nab, corpus, scores, profiles)
    by_file = {s.relpath: [s] for s in corpus}
    by_cat: dict[str, list[Any]] = {}
    for s in corpus:
        by_cat.setdefault(s.category, []).append(s)
    out: dict[str, Any] = {"name": name}
    out["threshold"] = h.threshold(corpus, "standard")
    for p in PROFILES:
        out[p], out[f"{p}_files"] = h.in_sample(p)
        out[f"{p}_lofo"], out[f"{p}_lofo_files"] = h.leave_out(by_file, p)
        out[f"{p}_loco"], out[f"{p}_loco_cats"] = h.leave_out(by_cat, p)
    out["false_alarms"] = false_alarms_per_1000(spec, out["threshold"])
    out["points_per_second"] = sum(s.n for s in corpus) / max(sum(secs.values()), 1e-9)
    out["cpu_points_per_second"] = cpu_points_per_second(corpus, spec, cpu_rows)
    return out


def print_detector(r: dict[str, Any]) -> None:
    print(
        f"\n== {r['name']}  ({r['points_per_second']:,.0f} pts/s wall, "
        f"{r['cpu_points_per_second']:,.0f} pts/s cpu)"
    )
    for p in PROFILES:
        print(
            f"  {SHORT[p]:>5}  in-sample {r[p]:6.1f}   LOFO pooled {r[p + '_lofo']:6.1f}   "
            f"LOCO pooled {r[p + '_loco']:6.1f}"
        )
    p = "standard"
    print(f"  per file, in sample : {spread(r[p + '_files'])}")
    print(f"  per file, LOFO      : {spread(list(r[p + '_lofo_files'].values()))}")
    worst = sorted(r[p + "_lofo_files"].items(), key=lambda kv: kv[1])[:3]
    print("  worst LOFO files    : " + ", ".join(f"{k.split('/')[-1]} {v:.1f}" for k, v in worst))
    fa = r["false_alarms"]
    print(
        f"  anomaly-free series : {sum(fa.values()) / len(fa):.2f} false alarms / 1000 points "
        f"at threshold {r['threshold']:.3f} ("
        + ", ".join(f"{k} {v:.2f}" for k, v in fa.items())
        + ")"
    )
    print(
        "  LOCO per category   : "
        + ", ".join(f"{k} {v:.1f}" for k, v in r[p + "_loco_cats"].items())
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--nab",
        type=Path,
        default=Path(os.environ["NAB_DIR"]) if os.environ.get("NAB_DIR") else None,
        required=not os.environ.get("NAB_DIR"),
        help="NAB directory with nab_score.py, data/, labels/ (or the NAB_DIR variable)",
    )
    ap.add_argument(
        "--detectors",
        default="",
        help="comma-separated names (default: every registered detector); a name may carry "
        "params to measure a knob moved: 'fusion:history=1000;median_window=10'",
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
    registered = discover()  # imports every detector module, also for names given explicitly
    names = [n for n in a.detectors.split(",") if n] or registered
    corpus = nab.load_corpus(
        str(nab_dir / "data"), str(nab_dir / "labels" / "combined_windows.json"), a.subset
    )
    rows = []
    for name in names:
        r = evaluate(nab, nab_dir, corpus, name, a.jobs, a.cpu_rows)
        rows.append(r)
        print_detector(r)
        sys.stdout.flush()

    w = max(len("detector"), *(len(n) for n in names))
    print(
        f"\n| {'detector':<{w}} | std in | std LOFO | LOFO file median | LOFO file worst "
        f"| std LOCO | lowFP in/LOFO | lowFN in/LOFO | no-anomaly FA/1k | pts/s cpu |"
    )
    print(
        f"|{'-' * (w + 2)}|--------|----------|------------------|-----------------|----------"
        f"|---------------|---------------|------------------|-----------|"
    )
    for r in rows:
        files = list(r["standard_lofo_files"].values())
        print(
            f"| {r['name']:<{w}} | {r['standard']:6.1f} | {r['standard_lofo']:8.1f} | "
            f"{statistics.median(files):16.1f} | {min(files):15.1f} | "
            f"{r['standard_loco']:8.1f} | "
            f"{r['reward_low_FP_rate']:5.1f} / {r['reward_low_FP_rate_lofo']:5.1f} | "
            f"{r['reward_low_FN_rate']:5.1f} / {r['reward_low_FN_rate_lofo']:5.1f} | "
            f"{sum(r['false_alarms'].values()) / len(r['false_alarms']):16.2f} | "
            f"{r['cpu_points_per_second']:9,.0f} |"
        )
    fast = [r for r in rows if r["cpu_points_per_second"] >= MIN_POINTS_PER_SECOND]
    if fast:
        best = max(fast, key=lambda r: statistics.median(r["standard_lofo_files"].values()))
        best = best["name"]
        current = aliases().get("default")
        note = ""
        if best != current and names == registered:  # only a run over every detector decides
            note = "  <-- update DEFAULT in detectors/__init__.py"
        print(
            f"\nbest (>= {MIN_POINTS_PER_SECOND:,} pts/s cpu, by median held-out file score): "
            f"{best}; default -> {current}{note}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
