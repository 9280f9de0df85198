"""Resolve, format, start, probe and stop a local Apache Kafka broker."""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path
from types import TracebackType

from spendfuse.localkafka import security
from spendfuse.localkafka.security import KafkaPrincipals
from spendfuse.schemas.errors import SpendfuseError

KAFKA_VERSION = os.environ.get("SPENDFUSE_KAFKA_VERSION", "4.3.1")
_READY_LINE = "Kafka Server started"


class LocalKafkaError(SpendfuseError):
    """The local broker could not be resolved or started; the message says why and what to do."""


def cache_root() -> Path:
    default = Path.home() / ".cache" / "spendfuse"
    return Path(os.environ.get("SPENDFUSE_KAFKA_CACHE", default))


def resolve_jars(version: str = KAFKA_VERSION) -> Path:
    """Return a directory holding the broker's runtime classpath, resolving it once with Maven."""
    lib = cache_root() / f"kafka-{version}" / "lib"
    if (lib / f"kafka_2.13-{version}.jar").exists():
        return lib
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "Maven (mvn) is not on the PATH: install Maven 3.8+ to fetch the Kafka broker jars, "
            "or set SPENDFUSE_BOOTSTRAP_SERVERS to an existing Kafka"
        )
    work = lib.parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    pom.write_text(resources.files(__package__).joinpath("pom.xml").read_text())
    tmp_lib = work / "lib.partial"
    shutil.rmtree(tmp_lib, ignore_errors=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp_lib}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr)[-2000:]
        raise LocalKafkaError(f"Maven could not resolve Kafka {version}:\n{tail}")
    # slf4j-simple 2 needs slf4j-api 2; Kafka brings 1.7 transitively.
    for old in tmp_lib.glob("slf4j-api-1.*.jar"):
        old.unlink()
    shutil.rmtree(lib, ignore_errors=True)
    tmp_lib.rename(lib)
    return lib


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kafka_uuid() -> str:
    """A cluster id as Kafka makes them: never starting with "-", which the storage tool's
    argument parser would take for an option (1 start in 64 would fail)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def server_properties(
    log_dir: Path,
    port: int,
    controller_port: int,
    partitions: int,
    sasl: KafkaPrincipals | None = None,
) -> str:
    listener = security.LISTENER if sasl else "PLAINTEXT"
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "listeners": f"{listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"{listener}://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "log.dirs": str(log_dir),
        "num.partitions": str(partitions),
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
        "log.cleaner.backoff.ms": "1000",
        **(security.server_properties(sasl) if sasl else {}),
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class LocalKafka:
    """One broker process. Use as a context manager, or call :meth:`start` and :meth:`stop`.

    :meth:`restart` (or :meth:`stop` with ``keep_data=True`` then :meth:`start`) brings the
    same broker back on the same ports and data: clients reconnect to the address they know and
    find every topic, committed offset and producer id as they were.

    With ``sasl`` (:class:`~spendfuse.localkafka.security.KafkaPrincipals`) the only client
    listener is SASL_PLAINTEXT, an authorizer refuses what no ACL allows, and the ACLs of that
    module (only workers and operators may write ``spendfuse.control``) are created at start;
    :meth:`client_config` gives a principal's librdkafka login.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        version: str = KAFKA_VERSION,
        port: int | None = None,
        partitions: int = 4,
        heap: str = "512m",
        sasl: KafkaPrincipals | None = None,
    ) -> None:
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="spendfuse-kafka-"))
        self.version = version
        self.port = port or free_port()
        self.controller_port = free_port()
        self.partitions = partitions
        self.heap = heap
        self.sasl = sasl
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client_config(self, user: str) -> dict[str, str]:
        """librdkafka settings to log in as ``user`` ({} without SASL)."""
        return self.sasl.client_config(user) if self.sasl else {}

    @property
    def log_path(self) -> Path:
        return self.workdir / "broker.log"

    def _java(self) -> str:
        java = shutil.which("java")
        if java is None:
            raise LocalKafkaError(
                "Java is not on the PATH: the local Kafka broker needs Java 17+ "
                "(or set SPENDFUSE_BOOTSTRAP_SERVERS to an existing Kafka)"
            )
        return java

    def start(self, timeout_s: float = 120.0) -> str:
        java = self._java()
        lib = resolve_jars(self.version)
        self.workdir.mkdir(parents=True, exist_ok=True)
        data = self.workdir / "data"
        props = self.workdir / "server.properties"
        fresh = not (data / "meta.properties").exists()
        props.write_text(
            server_properties(data, self.port, self.controller_port, self.partitions, self.sasl)
        )
        classpath = f"{lib}{os.sep}*"
        if fresh:
            fmt = subprocess.run(
                [
                    java,
                    "-cp",
                    classpath,
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    _kafka_uuid(),
                    "-c",
                    str(props),
                    *(security.format_args(self.sasl) if self.sasl else []),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if fmt.returncode != 0:
                raise LocalKafkaError(f"formatting Kafka storage failed:\n{fmt.stderr[-2000:]}")
        log = self.log_path.open("ab")
        log_start = log.tell()  # a restart appends: only this run's lines say it is ready
        self.proc = subprocess.Popen(
            [
                java,
                f"-Xmx{self.heap}",
                "-Xms128m",
                "-XX:ActiveProcessorCount=2",
                "-XX:+UseSerialGC",
                "-Dorg.slf4j.simpleLogger.defaultLogLevel=info",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(props),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self._wait_ready(timeout_s, log_start)
        if self.sasl is not None:  # idempotent: a restart re-creates the same bindings
            try:
                security.create_acls(self.bootstrap_servers, self.sasl, timeout_s)
            except Exception as exc:
                self.stop()
                raise LocalKafkaError(f"creating the broker's ACLs failed: {exc}") from exc
        return self.bootstrap_servers

    def _wait_ready(self, timeout_s: float, log_start: int = 0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise LocalKafkaError(
                    f"the Kafka broker exited with code {self.proc.returncode}; "
                    f"its log ({self.log_path}) ends:\n{self._log_tail()}"
                )
            if _READY_LINE in self._log_since(log_start) and self._port_open():
                return
            time.sleep(0.2)
        self.stop()
        raise LocalKafkaError(
            f"the Kafka broker was not ready within {timeout_s:.0f}s; its log ends:\n"
            f"{self._log_tail()}"
        )

    def _port_open(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def _log_since(self, start: int) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def _log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        except FileNotFoundError:
            return ""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 20.0, *, keep_data: bool = False, hard: bool = False) -> None:
        """Stop the broker: a controlled shutdown (SIGTERM), or a crash with ``hard=True``.

        A temporary work directory (none given) is removed unless ``keep_data`` is set, which
        :meth:`restart` needs; a work directory the caller gave is always kept.
        """
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL if hard else signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._own_workdir and not keep_data:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart(self, timeout_s: float = 120.0, *, hard: bool = False) -> str:
        """Stop the broker and start it again on the same ports and data directory."""
        self.stop(keep_data=True, hard=hard)
        return self.start(timeout_s)

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
