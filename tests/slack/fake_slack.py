"""A local HTTP server that answers like Slack's Web API, for slack-sdk to talk to in tests.

It speaks ``chat.postMessage`` and ``chat.update`` (JSON bodies, bearer token, ``ok``/``error``),
and can be scripted to fail: 429 with ``Retry-After``, 5xx, or down (503) until brought back.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SlackLog:
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # ts -> message
    updates: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[float, str, int]] = field(default_factory=list)  # (time, method, status)

    def top_level(self) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if not m.get("thread_ts")]

    def replies_all(self) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m.get("thread_ts")]

    def replies(self, ts: str) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m.get("thread_ts") == ts]


class FakeSlack:
    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.log = SlackLog()
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.down = False
        self._lock = threading.Lock()
        self._seq = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                method = self.path.rsplit("/", 1)[-1]
                status, headers, payload = fake.answer(
                    method, self.headers.get("Authorization", ""), body
                )
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSlack:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, auth: str, body: bytes) -> tuple[int, dict[str, str], dict]:
        with self._lock:
            status, headers, payload = self._answer(method, auth, body)
            self.log.requests.append((time.monotonic(), method, status))
            return status, headers, payload

    def _answer(self, method: str, auth: str, body: bytes) -> tuple[int, dict[str, str], dict]:
        if self.down:
            return 503, {}, {"ok": False, "error": "service_unavailable"}
        if self.script:
            status, headers = self.script.popleft()
            error = "ratelimited" if status == 429 else "internal_error"
            return status, headers, {"ok": False, "error": error}
        if auth != f"Bearer {self.token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        args = json.loads(body or b"{}")
        channel = args.get("channel", "")
        if not channel.startswith("#"):
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if method == "chat.postMessage":
            self._seq += 1
            ts = f"1700000000.{self._seq:06d}"
            self.log.messages[ts] = {**args, "ts": ts}
            return 200, {}, {"ok": True, "channel": channel, "ts": ts, "message": args}
        if method == "chat.update":
            if args.get("ts") not in self.log.messages:
                return 200, {}, {"ok": False, "error": "message_not_found"}
            self.log.messages[args["ts"]].update(text=args.get("text"), blocks=args.get("blocks"))
            self.log.updates.append(args)
            return 200, {}, {"ok": True, "channel": channel, "ts": args["ts"]}
        return 200, {}, {"ok": False, "error": "unknown_method"}
