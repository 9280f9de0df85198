"""Notifier delivery latency and a receiver outage, on a real broker with a local fake Slack.

    python benchmarks/notify_latency.py [--alerts 200] [--outage-s 600] [--bootstrap-servers H:P]

(1) Publishes ``--alerts`` alerts, one every 50 ms, each its own group (``group_wait: 0s``), and
prints p50/p99 from the alert's record on the alerts topic to Slack's answer (the notifier's
``spendfuse_notify_delivery_seconds``, plus the fake Slack's receipt time). (2) Takes Slack down
for ``--outage-s`` seconds while the same number of alerts arrive, brings it back, and prints
what was lost and what was posted twice (goal: nothing, nothing). The default outage is the 10
minutes the issue asks about; ``--outage-s 60`` is a quicker look.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
from confluent_kafka import Producer
from pydantic import SecretStr

from spendfuse.localkafka import LocalKafka
from spendfuse.schemas.alert import Alert, Evidence
from spendfuse.schemas.codec import encode
from spendfuse.settings import Settings
from spendfuse.streams.notify import NotifyOptions, NotifyTopics, RetryPolicy, build_notifier
from spendfuse.streams.notify.topics import ensure_topics

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fake Slack in tests/slack
from tests.slack.fake_slack import FakeSlack

ROUTING = """
version: 1
receivers: [{name: team, slack: {channel: "#bench"}}]
route: {receiver: team, group_by: [tenant_id, use_case_id], group_wait: 0s,
        group_interval: 1s, repeat_interval: 4h}
"""


def alert(run: str, n: int) -> Alert:
    return Alert(
        alert_id=f"{run}-{n}",
        fingerprint=f"bench/acme/uc{n}-{run}",
        rule="bench",
        status="firing",
        severity="medium",
        tenant_id="acme",
        use_case_id=f"uc{n}-{run}",
        summary=f"bench {n}",
        evidence=Evidence(metric="m", value=1.0),
        fired_at=datetime.now(UTC),
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def publish(producer: Producer, topic: str, alerts: list[Alert], gap_s: float) -> dict[str, float]:
    sent = {}
    for a in alerts:
        producer.produce(topic, key=a.fingerprint.encode(), value=encode(a))
        producer.poll(0)
        sent[a.use_case_id] = time.monotonic()
        time.sleep(gap_s)
    producer.flush(30)
    return sent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alerts", type=int, default=200)
    ap.add_argument("--outage-s", type=float, default=600)
    ap.add_argument("--bootstrap-servers", default=None)
    args = ap.parse_args()
    broker = None
    bootstrap = args.bootstrap_servers
    if not bootstrap:
        broker = LocalKafka(Path(tempfile.mkdtemp()), partitions=4)
        bootstrap = broker.start()
    run = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp())
    (tmp / "rules").mkdir()
    (tmp / "rules" / "routing.yaml").write_text(ROUTING)
    topics = NotifyTopics.prefixed(f"bench.notify.{run}")
    ensure_topics(bootstrap, {topics.alerts: (4, False), topics.control: (1, True)})
    try:
        with FakeSlack() as slack:
            posted_at: dict[str, float] = {}
            answer = slack.answer

            def timed(method: str, auth: str, body: bytes) -> tuple:
                out = answer(method, auth, body)
                if method == "chat.postMessage" and out[0] == 200 and b"thread_ts" not in body:
                    uc = orjson.loads(body)["text"].split("use_case_id ")[1].split(")")[0]
                    posted_at.setdefault(uc, time.monotonic())
                return out

            slack.answer = timed  # type: ignore[method-assign]
            settings = Settings(
                bootstrap_servers=bootstrap,
                rules_dir=tmp / "rules",
                rules_default_pack=False,
                slack_bot_token=SecretStr(slack.token),
                slack_base_url=slack.base_url,
                console_alerts=False,
                data_dir=tmp / "data",
                notify_metrics_port=0,
            )
            notifier = build_notifier(
                settings,
                topics,
                NotifyOptions(group_id=f"bench-{run}", retry=RetryPolicy(base_s=1.0, max_s=30.0)),
            )
            stop = threading.Event()
            thread = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
            thread.start()
            producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
            first = [alert(run, n) for n in range(args.alerts)]
            sent = publish(producer, topics.alerts, first, 0.05)
            deadline = time.monotonic() + 120
            while len(slack.log.top_level()) < args.alerts and time.monotonic() < deadline:
                time.sleep(0.1)
            lat = [posted_at[u] - t for u, t in sent.items() if u in posted_at]
            hist = notifier.metrics.delivery_seconds.labels("slack")
            print(f"== latency, {args.alerts} alerts one every 50 ms, group_wait 0s")
            print(
                f"  publish -> Slack post: p50 {pct(lat, 0.5) * 1000:.0f} ms, "
                f"p99 {pct(lat, 0.99) * 1000:.0f} ms  (notifier histogram sum "
                f"{hist._sum.get():.1f}s over {len(lat)})"
            )

            slack.down = True
            second = [alert(run, args.alerts + n) for n in range(args.alerts)]
            gap = args.outage_s / max(1, args.alerts)
            t0 = time.monotonic()
            publish(producer, topics.alerts, second, gap)
            time.sleep(max(0.0, args.outage_s - (time.monotonic() - t0)))
            slack.down = False
            back = time.monotonic()
            want = {a.use_case_id for a in [*first, *second]}
            deadline = back + 300
            while time.monotonic() < deadline:
                posted = [m for m in slack.log.top_level()]
                if {u for u in want if any(u in m["text"] for m in posted)} == want:
                    break
                time.sleep(0.5)
            posted = slack.log.top_level()
            counts = {u: sum(u in m["text"] for m in posted) for u in want}
            lost = sum(c == 0 for c in counts.values())
            twice = sum(c > 1 for c in counts.values())
            errors = sum(v for k, v in notifier.counts.items() if k.startswith("error:"))
            print(f"== a {args.outage_s:.0f}s Slack outage with {args.alerts} alerts arriving")
            print(
                f"  lost {lost}, posted twice {twice}, failed attempts retried {errors}, "
                f"all delivered {time.monotonic() - back:.1f}s after Slack came back"
            )
            stop.set()
            thread.join(30)
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
