"""Slack through slack-sdk's WebClient: one message per group, then updates in its thread.

The first notification of a group posts a Block Kit message; later ones (alerts added,
resolved, repeats) update that message in place and reply in its thread with what changed, so
one incident group is one thread. No SDK retries: every error becomes a
:class:`~spendfuse.streams.notify.receivers.DeliveryError` and the dispatcher's backoff applies
(429 keeps Slack's ``Retry-After``). ``ok: false`` answers (``invalid_auth``,
``channel_not_found``) are errors too, retried and counted: nothing is printed-and-forgotten.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from spendfuse.rules.grouping import Notification
from spendfuse.rules.model import ReceiverSpec
from spendfuse.rules.routing import OWNER_PREFIX
from spendfuse.streams.notify.receivers import DeliveryError, ReceiverContext
from spendfuse.streams.slack_message import POST_OPTIONS, build_group_message, build_thread_reply

KIND = "slack"


class SlackReceiver:
    kind = KIND

    def __init__(self, client: WebClient, channel: str, ctx: ReceiverContext) -> None:
        self.client = client
        self.channel = channel
        self.ctx = ctx

    def _call(self, method: str, thread: dict[str, Any] | None, **kwargs: Any) -> Any:
        try:
            return self.client.api_call(method, json=kwargs)
        except SlackApiError as exc:
            status = exc.response.status_code
            error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            retry_after = None
            if status == 429:
                retry_after = float(exc.response.headers.get("Retry-After", 1))
            reason = (
                "ratelimited"
                if status == 429
                else (f"http_{status}" if status >= 500 or not error else str(error))
            )
            raise DeliveryError(
                reason, f"{method}", retry_after_s=retry_after, thread=thread
            ) from None
        except OSError as exc:  # connection refused/reset, timeouts (URLError is an OSError)
            raise DeliveryError("connection", type(exc).__name__, thread=thread) from None

    def send(self, note: Notification) -> dict[str, Any]:
        message = {**build_group_message(note, self.ctx.lift_hints), **POST_OPTIONS}
        thread = note.thread
        if thread.get("ts"):
            try:
                self._call(
                    "chat.update", thread, channel=thread["channel"], ts=thread["ts"], **message
                )
            except DeliveryError as exc:
                if exc.reason != "message_not_found":
                    raise
                thread = {}  # the message was deleted: start the thread again
        if not thread.get("ts"):
            channel = note.channel or self.channel
            resp = self._call("chat.postMessage", None, channel=channel, **message)
            thread = {"channel": resp["channel"], "ts": resp["ts"], "replies": 0}
            if note.kind == "new":
                return thread
        self._call(
            "chat.postMessage",
            thread,
            channel=thread["channel"],
            thread_ts=thread["ts"],
            text=build_thread_reply(note),
            **POST_OPTIONS,
        )
        return {**thread, "replies": int(thread.get("replies", 0)) + 1}


def build(name: str, spec: ReceiverSpec | None, ctx: ReceiverContext) -> SlackReceiver | None:
    token = ctx.settings.slack_bot_token
    if token is None or not token.get_secret_value():
        return None  # unset, or set empty (compose's default): the console only
    if name.startswith(OWNER_PREFIX):
        channel = name[len(OWNER_PREFIX) :]
    elif spec is not None and spec.slack is not None:
        channel = spec.slack.channel
    elif spec is None and name == "console":
        channel = ctx.settings.slack_channel  # the built-in default route, with a token set
    else:
        return None
    client = WebClient(
        token=token.get_secret_value(),
        base_url=ctx.settings.slack_base_url,
        timeout=10,
        retry_handlers=[],
    )
    return SlackReceiver(client, channel, ctx)
