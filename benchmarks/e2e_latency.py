"""End-to-end latency on a real broker: from the event that trips a rule to the gateway's command.

    python benchmarks/e2e_latency.py [--trips 100] [--load-eps 0] [--bootstrap-servers HOST:PORT]

Starts a local broker (unless given one), a ``spendfuse worker`` on default settings (spend limit
$5 per 60 s, degrade L1) with a fresh signing key, and a gateway :class:`ControlClient`. Each
trip publishes one $6 cost event for a fresh use case and times from just before ``publish`` to
the moment the client has verified and applied the signed command (its ``on_record`` hook).
Goal: p50 < 500 ms, p99 < 2 s.

``--load-eps N`` adds a steady background load of N events/s (over ``--load-use-cases`` use
cases, well under every limit, sent in envelopes by a second publisher that lingers
``--load-linger-ms``) while the trips are
timed: run it at 50% and 90% of the worker's measured rate (``benchmarks/worker_vs_raw.py``) for
latency under load. The figure printed includes the producer's envelope linger (20 ms) and the
worker's commit interval (0.5 s), since decisions leave at the commit that covers their events.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from spendfuse.control.signing import Verifier, generate_ed25519_spec, parse_signer
from spendfuse.gateway.client import ControlClient
from spendfuse.localkafka import LocalKafka
from spendfuse.localkafka.broker import free_port
from spendfuse.producer import CostEventPublisher
from spendfuse.settings import Settings
from spendfuse.streams.topics import ensure_topics


class Arrivals:
    """Records when the client applied a command for each target key."""

    def __init__(self) -> None:
        self.at: dict[bytes, float] = {}
        self.cond = threading.Condition()

    def __call__(self, outcome: str, key: bytes | None, _now: float) -> None:
        if outcome == "applied" and key is not None:
            with self.cond:
                self.at.setdefault(key, time.perf_counter())
                self.cond.notify_all()

    def wait(self, key: bytes, timeout_s: float) -> float | None:
        with self.cond:
            self.cond.wait_for(lambda: key in self.at, timeout_s)
            return self.at.get(key)


def trip(pub: CostEventPublisher, arrivals: Arrivals, run: str, i: int, timeout_s: float) -> float:
    uc = f"e2e-{run}-{i}"
    event = {
        "schema_version": 1,
        "cost_event_id": uuid.uuid4().hex,
        "event_time": datetime.now(UTC).isoformat(),
        "tenant_id": "bench",
        "use_case_id": uc,
        "risk_tier": "low",
        "environment": "prod",
        "component": "model_call",
        "provider": "openai",
        "model_or_service": "gpt-4o",
        "allocated_cost_usd": 6.0,
    }
    t0 = time.perf_counter()
    pub.publish(event)
    pub.flush(0)  # hand it to librdkafka now; delivery stays asynchronous
    seen = arrivals.wait(f"use_case:{uc}".encode(), timeout_s)
    if seen is None:
        raise SystemExit(f"no command for {uc} within {timeout_s}s")
    return seen - t0


class Load(threading.Thread):
    """Publishes ``eps`` small cost events per second until stopped; counts what it sent."""

    def __init__(
        self, bootstrap: str, eps: float, use_cases: int, run: str, linger_ms: float
    ) -> None:
        super().__init__(daemon=True)
        self.pub = CostEventPublisher(bootstrap, envelope_linger_ms=linger_ms)
        self.eps, self.use_cases, self.run_id = eps, use_cases, run
        self.stop_flag = threading.Event()
        self.sent = 0

    def run(self) -> None:
        started = time.perf_counter()
        while not self.stop_flag.is_set():
            due = int((time.perf_counter() - started) * self.eps)
            now = datetime.now(UTC).isoformat()
            while self.sent < due:
                self.pub.publish(
                    {
                        "schema_version": 1,
                        "cost_event_id": f"{self.run_id}-{self.sent}",
                        "event_time": now,
                        "tenant_id": "bench-load",
                        "use_case_id": f"load-{self.run_id}-{self.sent % self.use_cases}",
                        "risk_tier": "low",
                        "environment": "prod",
                        "component": "model_call",
                        "provider": "openai",
                        "model_or_service": "gpt-4o-mini",
                        "input_tokens": 800,
                        "output_tokens": 200,
                        "allocated_cost_usd": 0.0004,
                    }
                )
                self.sent += 1
            time.sleep(0.005)
        self.pub.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trips", type=int, default=100)
    ap.add_argument("--pause-ms", type=int, default=50, help="between trips")
    ap.add_argument("--load-eps", type=float, default=0.0, help="background events/s")
    ap.add_argument("--load-use-cases", type=int, default=20)
    ap.add_argument(
        "--load-linger-ms", type=float, default=200.0, help="the load publisher's envelope linger"
    )
    ap.add_argument("--bootstrap-servers", default=None)
    args = ap.parse_args()
    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = LocalKafka(partitions=4)
        bootstrap = broker.start()
    tmp = Path(tempfile.mkdtemp(prefix="spendfuse-e2e-"))
    spec = generate_ed25519_spec()
    run = uuid.uuid4().hex[:6]
    proc = None
    try:
        ensure_topics(Settings(bootstrap_servers=bootstrap))
        env = {
            **os.environ,
            "SPENDFUSE_BOOTSTRAP_SERVERS": bootstrap,
            "SPENDFUSE_APP_ID": f"spendfuse-e2e-{run}",
            "SPENDFUSE_DATA_DIR": str(tmp),
            "SPENDFUSE_WEB_PORT": str(free_port()),
            "SPENDFUSE_CONSOLE_ALERTS": "false",
            "SPENDFUSE_CONTROL_SIGNING_KEY": spec,
        }
        with (tmp / "worker.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "spendfuse", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        print(f"worker log: {tmp / 'worker.log'}")
        arrivals = Arrivals()
        verifier = Verifier([parse_signer(spec).verify_key_spec()])
        with (
            ControlClient(bootstrap, verifier, on_record=arrivals) as client,
            CostEventPublisher(bootstrap) as pub,
        ):
            warm = trip(pub, arrivals, run, -1, 120)  # includes worker start-up and assignment
            print(f"warm-up trip (worker start-up included): {warm:.1f} s")
            load = None
            if args.load_eps > 0:
                load = Load(bootstrap, args.load_eps, args.load_use_cases, run, args.load_linger_ms)
                load.start()
                time.sleep(5)  # let the worker settle into the load
            lat = []
            t_load = time.perf_counter()
            for i in range(args.trips):
                lat.append(trip(pub, arrivals, run, i, 30))
                time.sleep(args.pause_ms / 1000)
            if load is not None:
                load.stop_flag.set()
                load.join(30)
                rate = load.sent / (time.perf_counter() - t_load + 5)
                print(f"background load: {rate:,.0f} events/s over {args.load_use_cases} use cases")
            print(
                f"e2e event -> gateway command, {len(lat)} trips, default settings: "
                f"p50 {pct(lat, 0.5):.0f} ms  p90 {pct(lat, 0.9):.0f} ms  "
                f"p99 {pct(lat, 0.99):.0f} ms  max {max(lat) * 1000:.0f} ms "
                "(goal p50 < 500 ms, p99 < 2000 ms)"
            )
            print(f"client counts: {client.counts}")
    finally:
        if proc is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        if broker:
            broker.stop()


if __name__ == "__main__":
    main()
