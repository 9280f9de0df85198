"""JSON over HTTP for the webhook and PagerDuty receivers (stdlib only), errors as reasons."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

import orjson

from spendfuse.streams.notify.receivers import DeliveryError


def post_json(
    url: str, body: Any, headers: Mapping[str, str] | None = None, timeout_s: float = 10.0
) -> tuple[int, Any]:
    """POST ``body``; the status and parsed answer, or :class:`DeliveryError` (429 with its
    ``Retry-After``, ``http_<status>`` otherwise, ``connection`` when unreachable)."""
    request = urllib.request.Request(
        url,
        data=orjson.dumps(body),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "spendfuse", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            raw = resp.read()
            return resp.status, _parse(raw)
    except urllib.error.HTTPError as exc:
        retry_after = None
        if exc.code == 429:
            try:
                retry_after = float(exc.headers.get("Retry-After", 1))
            except ValueError:
                retry_after = 1.0
        raise DeliveryError(
            "ratelimited" if exc.code == 429 else f"http_{exc.code}",
            exc.read()[:200].decode(errors="replace"),
            retry_after_s=retry_after,
        ) from None
    except OSError as exc:
        raise DeliveryError("connection", type(exc).__name__) from None


def _parse(raw: bytes) -> Any:
    try:
        return orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        return raw.decode(errors="replace")
