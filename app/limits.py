"""Limits applied before the app reads a body (pure ASGI, no buffering): size, and forecasts at once."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def _json_response(status: int, detail: str, *extra: tuple[bytes, bytes]) -> tuple[Message, Message]:
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    return {"type": "http.response.start", "status": status, "headers": headers}, {
        "type": "http.response.body",
        "body": body,
    }


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        for reply in _json_response(413, f"request body larger than {self.max_bytes} bytes"):
            await send(reply)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(send)
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:  # a chunked body with no Content-Length
                    refused = True
                    await self._reject(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # the 413 has been sent; whatever the app answers to the disconnect is dropped
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


class ForecastAdmission:
    """At most `limit` POST /forecast requests are read and computed at once; the rest wait, unread.

    A waiting request's body stays in the socket (uvicorn stops reading past 64 KiB), so memory holds
    `limit` batches, not one per open connection. 64 clients sending 1,000-series lstm64 batches to
    one worker: RSS peaked at 444 MiB with anyio's 40 threads, 274 MiB with 4 threads, 142 MiB with 4
    admitted, 128-135 MiB with 2 admitted (108 MiB idle). Probes and /models never wait here.

    An admitted request must deliver its whole body within `body_timeout_s`, or it gets a 408 and its
    slot back: two clients that sent headers and then stalled once held both slots, and every other
    forecast waited, for minutes, while the probes still said the worker was fine.
    """

    def __init__(self, app: ASGIApp, limit: int, body_timeout_s: float = 10.0, path: str = "/forecast"):
        self.app = app
        self.path = path
        self.body_timeout_s = body_timeout_s
        self.slots = asyncio.Semaphore(limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        async with self.slots:
            deadline = asyncio.get_running_loop().time() + self.body_timeout_s
            body_read = timed_out = False

            async def timed_receive() -> Message:
                nonlocal body_read, timed_out
                if timed_out:
                    return {"type": "http.disconnect"}
                if body_read:  # afterwards the app only listens for a disconnect: no deadline
                    return await receive()
                try:
                    async with asyncio.timeout_at(deadline):
                        message = await receive()
                except TimeoutError:
                    timed_out = True
                    for reply in _json_response(
                        408,
                        f"the request body did not arrive within {self.body_timeout_s:g} seconds "
                        "(BODY_TIMEOUT_SECONDS)",
                        (b"connection", b"close"),
                    ):
                        await send(reply)
                    return {"type": "http.disconnect"}
                if message["type"] != "http.request" or not message.get("more_body", False):
                    body_read = True
                return message

            async def guarded_send(message: Message) -> None:
                if not timed_out:  # the 408 has been sent; whatever the app answers to the disconnect is dropped
                    await send(message)

            await self.app(scope, timed_receive, guarded_send)
