"""Local HTTP servers that answer like a webhook consumer and PagerDuty's Events API v2.

``FakeWebhook`` records every JSON body posted to it (as Alertmanager webhook consumers do);
``FakePagerDuty`` checks events the way ``events.pagerduty.com/v2/enqueue`` does (routing key,
``event_action``, ``dedup_key``, payload fields on trigger), keeps incidents open or resolved by
dedup key, and answers 202 / 400 / 429. Both can be scripted to fail.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server:
    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.script: deque[tuple[int, dict[str, str]]] = deque()
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with fake.lock:
                    status, headers, payload = fake.answer(self.path, dict(self.headers), body)
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
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, Any]:
        if self.script:
            status, extra = self.script.popleft()
            return status, extra, {"status": "error", "message": "scripted"}
        return self.handle(path, headers, json.loads(body))

    def handle(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        raise NotImplementedError


class FakeWebhook(_Server):
    def __init__(self, token: str | None = None) -> None:
        super().__init__()
        self.token = token

    def handle(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        if self.token and headers.get("Authorization") != f"Bearer {self.token}":
            return 401, {}, {"error": "unauthorized"}
        self.bodies.append(body)
        return 200, {}, {"ok": True}


class FakePagerDuty(_Server):
    SEVERITIES = frozenset({"critical", "error", "warning", "info"})

    def __init__(self, routing_key: str = "R0UTINGKEY0123456789012345678901") -> None:
        super().__init__()
        self.routing_key = routing_key
        self.incidents: dict[str, str] = {}  # dedup_key -> "triggered" | "resolved"

    def handle(self, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        if path != "/v2/enqueue":
            return 404, {}, {"status": "error", "message": "not found"}
        if body.get("routing_key") != self.routing_key:
            return 400, {}, {"status": "invalid event", "message": "Invalid routing key"}
        action, key = body.get("event_action"), body.get("dedup_key")
        if action not in ("trigger", "acknowledge", "resolve") or not key:
            return 400, {}, {"status": "invalid event", "message": "Event object is invalid"}
        if action == "trigger":
            payload = body.get("payload") or {}
            if (
                not payload.get("summary")
                or not payload.get("source")
                or (payload.get("severity") not in self.SEVERITIES)
            ):
                return 400, {}, {"status": "invalid event", "message": "payload invalid"}
            self.incidents[key] = "triggered"
        elif action == "resolve":
            self.incidents[key] = "resolved"
        self.bodies.append(body)
        return 202, {}, {"status": "success", "message": "Event processed", "dedup_key": key}
