"""Run the demo: broker, worker + dashboard, simulated traffic, and a narrated incident.

The worker runs as a child process (``spendfuse worker``, in its own session so that Ctrl-C
reaches only this process, which then stops everything in order: traffic, worker, broker).
A background thread follows ``spendfuse.alerts`` and ``spendfuse.control``: it prints each
alert and command, and hands commands to the demo's gateway, which changes the traffic the
way a real gateway would (see :mod:`spendfuse.demo.gateway`).
"""

from __future__ import annotations

import itertools
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from spendfuse.demo.gateway import DemoGateway
from spendfuse.demo.traffic import DEMO_LIMIT_USD, LOOP_USE_CASE, DemoPlan, demo_events
from spendfuse.localkafka import LocalKafka
from spendfuse.localkafka.broker import free_port
from spendfuse.producer import CostEventPublisher
from spendfuse.rules.loader import DEMO_PACK
from spendfuse.schemas import topics
from spendfuse.schemas.alert import Alert
from spendfuse.schemas.codec import decode
from spendfuse.schemas.command import ControlCommand
from spendfuse.settings import Settings

console = Console(highlight=False)


class DemoError(RuntimeError):
    """The demo could not start one of its parts."""


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex((host, port)) != 0


@contextmanager
def broker(settings: Settings) -> Iterator[str]:
    if settings.bootstrap_servers:
        console.print(f"Using Kafka at [bold]{settings.bootstrap_servers}[/]")
        yield settings.bootstrap_servers
        return
    local = LocalKafka(settings.data_dir / "kafka", partitions=settings.partitions)
    with console.status("Starting a local Kafka broker (the first run fetches its jars)..."):
        servers = local.start()
    console.print(f"[green]✓[/] Local Kafka broker on [bold]{servers}[/]")
    try:
        yield servers
    finally:
        with console.status("Stopping the broker..."):
            local.stop()
        console.print("[green]✓[/] Broker stopped")


@contextmanager
def worker(
    settings: Settings, servers: str, web_port: int, log_path: Path, token: str
) -> Iterator[str]:
    env = {
        **os.environ,
        "SPENDFUSE_BOOTSTRAP_SERVERS": servers,
        "SPENDFUSE_DASHBOARD__TOKEN": token,
        "SPENDFUSE_WEB_PORT": str(web_port),
        "SPENDFUSE_APP_ID": "spendfuse-demo",
        "SPENDFUSE_RULES_DIR": str(DEMO_PACK),
        "SPENDFUSE_DATA_DIR": str(settings.data_dir),
        "SPENDFUSE_LOG_LEVEL": "info",
    }
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "spendfuse", "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://{settings.web_host}:{web_port}"
    try:
        with console.status("Starting the worker and its dashboard..."):
            _wait_ready(proc, url + "/readyz", log_path)
        console.print(
            f"[green]✓[/] Worker ready; dashboard at [bold cyan]{url}/dashboard/[/]"
            f"  (metrics: {url}/metrics, worker log: {log_path})"
        )
        yield url
    finally:
        with console.status("Stopping the worker..."):
            _stop(proc)
        console.print("[green]✓[/] Worker stopped")


def _wait_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_bytes()[-3000:].decode(errors="replace")
            raise DemoError(f"the worker exited (code {proc.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise DemoError(f"the worker was not ready in 180 s; see {log_path}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Narrator(threading.Thread):
    """Follows alerts and commands: prints them and feeds commands to the gateway."""

    def __init__(self, servers: str, gateway: DemoGateway) -> None:
        super().__init__(name="spendfuse-demo-narrator", daemon=True)
        self.gateway = gateway
        self.stop_event = threading.Event()
        self.story: list[str] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": servers,
                "group.id": f"spendfuse-demo-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "latest",
                "enable.auto.commit": False,
                "log_level": 2,
            }
        )
        self.consumer.subscribe([topics.ALERTS, topics.CONTROL])

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                msg = self.consumer.poll(0.5)
                if msg is None or msg.value() is None:
                    continue
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        console.print(f"[yellow]narrator:[/] {msg.error()}")
                    continue
                if msg.topic() == topics.ALERTS:
                    self._alert(decode(msg.value(), Alert))
                else:
                    self._command(decode(msg.value(), ControlCommand))
        finally:
            self.consumer.close()

    def _alert(self, alert: Alert) -> None:
        if alert.status == "firing":
            self.story.append("alert")
            console.print(
                f"[bold red]ALERT[/] {alert.rule} on [bold]{alert.use_case_id}[/]: {alert.summary}"
            )
            for held in alert.guardrail_held:
                console.print(f"      guardrail: {held}")
        else:
            self.story.append("resolved")
            console.print(
                f"[bold green]RESOLVED[/] {alert.rule} on {alert.use_case_id}: {alert.summary}"
            )

    def _command(self, command: ControlCommand) -> None:
        self.gateway.apply(command)
        kind = command.kind.value + (f" {command.level.value}" if command.level else "")
        colour = {"kill_switch": "red", "degrade": "yellow", "restore": "green"}.get(
            command.kind.value, "white"
        )
        self.story.append(command.kind.value)
        effect = {
            "kill_switch": "the gateway refuses its calls; the looping task is aborted",
            "degrade": "the gateway aborts the looping task and routes model calls to "
            "the small model",
            "restore": "the gateway lifts the command",
        }
        console.print(
            f"[bold {colour}]COMMAND[/] {kind} on [bold]{command.target.key}[/] by "
            f"{command.issued_by} → {effect.get(command.kind.value, '')}"
        )


def _spend_line(url: str) -> tuple[str, dict[str, float]]:
    """Each use case's spend rate over the last complete minute, from the worker's dashboard."""
    with urllib.request.urlopen(url + "/api/dashboard", timeout=5) as resp:
        snap = orjson.loads(resp.read())
    parts, rates_now = [], {}
    for uc in snap["use_cases"]:
        per_minute = max(1, 60 // snap["bucket_s"])
        done = [r or 0.0 for r in uc["rate_usd_per_min"][-per_minute - 1 : -1]]
        rate = sum(done) / max(len(done), 1)
        rates_now[uc["use_case_id"]] = rate
        mark = "[bold red]" if rate > DEMO_LIMIT_USD else ""
        parts.append(f"{mark}{uc['use_case_id']} ${rate:.2f}{'[/]' if mark else ''}")
    return "spend $/min: " + " · ".join(parts), rates_now


def publish_history(pub: CostEventPublisher, events: list[dict[str, Any]]) -> None:
    with Progress(
        TextColumn("Backfilling the last hour of traffic"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("history", total=len(events))
        for i, event in enumerate(events):
            pub.publish(event)
            if i % 200 == 0:
                progress.update(task, completed=i)
        pub.flush(30)
    console.print(f"[green]✓[/] Backfilled {len(events)} events (the last hour, for baselines)")


def publish_live(
    pub: CostEventPublisher,
    live: Iterator[dict[str, Any]],
    gateway: DemoGateway,
    url: str,
    narrator: Narrator,
    oncall: OnCall,
) -> None:
    """Publish each event at its event time, through the gateway; report spend every 30 s."""
    next_report = time.monotonic() + 30
    told_done = False
    for event in live:
        at = datetime.fromisoformat(event["event_time"])
        while (wait := (at - datetime.now(UTC)).total_seconds()) > 0:
            time.sleep(min(wait, 0.5))
        admitted = gateway.admit(event, datetime.now(UTC))
        if admitted is not None:
            pub.publish(admitted)
        oncall.check(gateway)
        if time.monotonic() < next_report:
            continue
        next_report += 30
        with suppress(OSError):
            line, rates = _spend_line(url)
            console.print(f"[dim]{datetime.now().strftime('%H:%M:%S')}[/] {line}")
            if (
                not told_done
                and "restore" in narrator.story
                and rates.get(LOOP_USE_CASE, 0.0) < DEMO_LIMIT_USD / 2
            ):
                told_done = True
                console.print(
                    "[bold green]The loop was caught and stopped; spend is back to "
                    "normal.[/] Traffic goes on; Ctrl-C stops everything."
                )


class OnCall:
    """The demo's on-call engineer: once a kill switch has held for ``after_s`` (the looping task
    is dead by then), they lift it through the dashboard's token-protected write API."""

    def __init__(self, url: str, token: str, after_s: float = 45.0) -> None:
        self.url, self.token, self.after_s = url, token, after_s
        self.seen: dict[str, float] = {}
        self.lifted: set[str] = set()

    def check(self, gateway: DemoGateway) -> None:
        for use_case, command in list(gateway.in_force.items()):
            if command.kind.value != "kill_switch" or command.command_id in self.lifted:
                continue
            first = self.seen.setdefault(command.command_id, time.monotonic())
            if time.monotonic() - first >= self.after_s:
                self.lifted.add(command.command_id)
                self._lift(use_case)

    def _lift(self, use_case: str) -> None:
        console.print(
            f"[bold cyan]ON-CALL[/] the looping task on {use_case} is dead; lifting the "
            "kill switch from the dashboard (POST /api/lift, token required)"
        )
        body = orjson.dumps(
            {
                "target_type": "use_case",
                "target_id": use_case,
                "author": "demo-oncall",
                "reason": "looping task aborted",
            }
        )
        req = urllib.request.Request(
            self.url + "/api/lift",
            data=body,
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            urllib.request.urlopen(req, timeout=10).close()
        except OSError as exc:
            console.print(f"[yellow]could not lift the kill switch:[/] {exc}")


def run_demo(settings: Settings) -> None:
    """Start everything, narrate the incident, and stop cleanly on Ctrl-C."""
    web_port = settings.web_port
    if not _port_free(settings.web_host, web_port):
        web_port = free_port()
    gateway = DemoGateway()
    token = secrets.token_urlsafe(16)  # lets the demo's on-call lift a kill switch
    with ExitStack() as stack:
        try:
            servers = stack.enter_context(broker(settings))
            url = stack.enter_context(
                worker(settings, servers, web_port, settings.data_dir / "demo-worker.log", token)
            )
            narrator = Narrator(servers, gateway)
            narrator.start()
            stack.callback(narrator.join, 5)
            stack.callback(narrator.stop_event.set)
            pub = stack.enter_context(CostEventPublisher(servers, config={"log_level": 2}))
            plan = DemoPlan(
                now=datetime.now(UTC), live_for=timedelta(hours=8), run_id=uuid.uuid4().hex[:8]
            )
            events = demo_events(plan)
            history, first_live = [], None
            for event in events:
                if datetime.fromisoformat(event["event_time"]) > plan.now:
                    first_live = event
                    break
                history.append(event)
            publish_history(pub, history)
            console.print(
                f"Live traffic for 5 use cases. In about {plan.loop_after.seconds} s an agent on "
                f"[bold]{LOOP_USE_CASE}[/] (low risk) gets stuck in a loop; the spend-rate limit "
                f"is ${DEMO_LIMIT_USD:.2f}/min per use case. Watch here and on the dashboard."
            )
            live = itertools.chain([first_live] if first_live else [], events)
            publish_live(pub, live, gateway, url, narrator, OnCall(url, token))
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the clean-up below finish
            console.print("\n[bold]Ctrl-C:[/] stopping the traffic, the worker and the broker...")
        except DemoError as exc:
            console.print(f"[red]The demo could not start:[/] {exc}")
            raise SystemExit(1) from None
    console.print("[green]Stopped cleanly.[/]")
