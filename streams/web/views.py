"""HTTP views on Faust's web server: the dashboard, its JSON, ``/metrics`` and health checks.

Reads are open (the server binds to localhost by default). Writes (silence an alert, lift a
command) need ``Authorization: Bearer <SPENDFUSE_DASHBOARD__TOKEN>``; with no token configured,
or an empty or blank one (``SPENDFUSE_DASHBOARD__TOKEN=`` in a .env file), they are refused, so
the dashboard is read-only out of the box. Faust's own ``/table``, ``/router``, ``/graph`` and
statistics endpoints are switched off (:func:`spendfuse.streams.app.create_app`): they would
show per-use-case state and the cluster's layout to anyone who can reach the port.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import faust
import orjson
from faust.web import Request, Response, View
from pydantic import SecretStr

from spendfuse.dashboard_state import DashboardState
from spendfuse.rules.ids import stable_id
from spendfuse.rules.silences import Silence, new_silence
from spendfuse.schemas.command import CommandKind, ControlCommand, Target, TargetType, Within
from spendfuse.schemas.common import DegradationLevel, to_epoch_ms
from spendfuse.silence_store import load_silences, save_silences
from spendfuse.streams.metrics import SpendfuseMetrics
from spendfuse.streams.web.health import readiness

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).parent / "static"
_MAX_SILENCE_S = 7 * 24 * 3600


@dataclass
class WebContext:
    state: DashboardState
    metrics: SpendfuseMetrics
    token: SecretStr | None
    control_topic: faust.TopicT
    signer: Any = None  # spendfuse.control.signing.Signer: signs operator commands
    silences_file: Path | None = None  # the store `spendfuse silence add` writes


def _silences(ctx: WebContext) -> list[Silence]:
    if ctx.silences_file is None:
        return []
    try:
        return load_silences(ctx.silences_file)
    except (OSError, ValueError) as exc:  # a bad file must not take the dashboard down
        log.warning("cannot read silences from %s: %s", ctx.silences_file, exc)
        return []


def _json(view: View, value: Any, status: int = 200) -> Response:
    return view.bytes(orjson.dumps(value), content_type="application/json", status=status)


def _authorized(ctx: WebContext, request: Request) -> tuple[bool, int, str]:
    if ctx.token is None or not ctx.token.get_secret_value().strip():
        return False, 403, "writes are disabled: set SPENDFUSE_DASHBOARD__TOKEN to enable them"
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), ctx.token.get_secret_value().encode()):
        return False, 401, "a valid 'Authorization: Bearer <token>' header is required"
    return True, 200, ""


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def register_web(app: faust.App, ctx: WebContext) -> None:
    """Add the dashboard, JSON API, metrics and health routes to ``app``'s web server."""
    assets = load_assets(STATIC_DIR)
    index_html = (STATIC_DIR / "index.html").read_bytes()

    @app.page("/static/{path:.+}")
    async def static(view: View, request: Request, path: str) -> Response:
        asset = assets.get(path)
        if asset is None:
            return _json(view, {"error": f"no static file {path!r}"}, 404)
        return view.bytes(asset[0], content_type=asset[1])

    @app.page("/dashboard/")
    async def dashboard(view: View, request: Request) -> Response:
        return view.bytes(index_html, content_type="text/html")

    @app.page("/api/dashboard")
    async def dashboard_json(view: View, request: Request) -> Response:
        return _json(view, ctx.state.snapshot(datetime.now(UTC), _silences(ctx)))

    @app.page("/metrics")
    async def metrics(view: View, request: Request) -> Response:
        body, content_type = ctx.metrics.exposition()
        # aiohttp wants the charset apart from the content type
        return view.bytes(body, content_type=content_type.split(";")[0])

    @app.page("/healthz")
    async def healthz(view: View, request: Request) -> Response:
        return _json(view, {"status": "alive"})

    @app.page("/readyz")
    async def readyz(view: View, request: Request) -> Response:
        ready, detail = readiness(app)
        return _json(view, detail, status=200 if ready else 503)

    @app.page("/api/silences")
    class Silences(View):
        async def post(self, request: Request) -> Response:
            ok, status, why = _authorized(ctx, request)
            if not ok:
                return _json(self, {"error": why}, status)
            body = await _body(request)
            fingerprint, duration_s = body.get("fingerprint"), body.get("duration_s")
            if (
                ctx.silences_file is None
                or not isinstance(fingerprint, str)
                or not (isinstance(duration_s, int) and 0 < duration_s <= _MAX_SILENCE_S)
            ):
                return _json(
                    self,
                    {
                        "error": "send fingerprint, author, comment and duration_s "
                        f"(1..{_MAX_SILENCE_S})"
                    },
                    400,
                )
            try:
                created = new_silence(
                    [f'fingerprint="{fingerprint}"'],
                    timedelta(seconds=duration_s),
                    str(body.get("author", "")),
                    str(body.get("comment", "")),
                    datetime.now(UTC),
                )
            except ValueError as exc:  # pydantic's ValidationError: names the bad field
                return _json(self, {"error": str(exc)}, 400)
            save_silences(ctx.silences_file, [*_silences(ctx), created])
            return _json(
                self, {"silence_id": created.id, "until": created.ends_at.isoformat()}, 201
            )

    @app.page("/api/lift")
    class Lift(View):
        async def post(self, request: Request) -> Response:
            ok, status, why = _authorized(ctx, request)
            if not ok:
                return _json(self, {"error": why}, status)
            body = await _body(request)
            try:
                target = Target(type=TargetType(body.get("target_type")), id=body.get("target_id"))
            except ValueError as exc:
                return _json(self, {"error": f"bad target: {exc}"}, 400)
            if ctx.signer is None:
                return _json(self, {"error": "no control signing key configured"}, 503)
            author = str(body.get("author") or "dashboard")
            command = operator_restore(
                target, author, str(body.get("reason") or "lifted"), datetime.now(UTC)
            )
            scopes = [
                Within.model_validate(held["within"])
                for held in ctx.state.in_force_on(target.key)
                if held.get("within")
            ]
            for n, scope in enumerate([None, *scopes]):  # every scope in force on the target
                update = {"within": scope, "command_id": f"{command.command_id}-{n}"}
                lift = command if scope is None else command.model_copy(update=update)
                for key, value, headers in ctx.signer.records(lift):  # stamped, signed, tombstone
                    await ctx.control_topic.send(key=key, value=value, headers=headers)
            ctx.metrics.record_command(command)
            return _json(self, {"published": command.command_id}, 201)


_CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".html": "text/html",
    ".txt": "text/plain",
}


def load_assets(root: Path) -> dict[str, tuple[bytes, str]]:
    """The page's static files, read once: a fixed whitelist, so no path ever leaves ``root``."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes(), _CONTENT_TYPES[path.suffix])
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix in _CONTENT_TYPES
    }


def operator_restore(target: Target, author: str, reason: str, now: datetime) -> ControlCommand:
    """A ``restore`` an operator issues from the dashboard (lifts a kill switch or degrade)."""
    return ControlCommand(
        command_id=stable_id("operator", target.key, "restore", to_epoch_ms(now)),
        kind=CommandKind.RESTORE,
        target=target,
        level=DegradationLevel.L0,
        issued_by=f"operator:{author}",
        reason=reason,
        issued_at=now,
        use_case_id=target.id if target.type is TargetType.USE_CASE else None,
    )
