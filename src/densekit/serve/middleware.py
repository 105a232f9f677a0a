"""ASGI middleware: a cap on request bodies and the time they may take to arrive, a cap on
requests in flight, and per-route metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import anyio

from densekit.serve.metrics import ServerMetrics

Scope = dict[str, Any]
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


async def reply(send: Any, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuses bodies over ``max_bytes`` with a 413, whether declared or streamed, and bodies
    that take longer than ``timeout_s`` to arrive with a 408 (a slow sender holds a connection
    and a request slot for as long as it likes otherwise).

    The body is read (up to the cap) before the app sees the request, so an oversized or
    unfinished one never reaches a handler half-read.
    """

    def __init__(self, app: Any, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await reply(send, 400, "the Content-Length header is not a number")
                return
            if int(declared) > self.max_bytes:
                await reply(send, 413, self._too_large())
                return
        chunks: list[bytes] = []
        outcome = "slow"
        with anyio.move_on_after(self.timeout_s):
            outcome = await self._read(receive, chunks)
        if outcome == "gone":
            return
        if outcome == "large":
            await reply(send, 413, self._too_large())
            return
        if outcome == "slow":
            await reply(
                send,
                408,
                f"the request body did not arrive within {self.timeout_s:g} s; send it at once",
            )
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read(self, receive: Any, chunks: list[bytes]) -> str:
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return "gone"
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return "large"
            chunks.append(chunk)
            if not message.get("more_body", False):
                return "read"

    def _too_large(self) -> str:
        return (
            f"the request body is larger than this server's limit of {self.max_bytes} bytes; "
            "send fewer documents or texts per request"
        )


class InFlightLimit:
    """Answers 503 at once beyond ``limit`` requests being handled, instead of queueing them
    without end. Connections that have not finished sending a request do not count: only the
    connection guard (:mod:`densekit.serve.connections`) bounds those."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.running = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.running >= self.limit:
            await reply(send, 503, f"the server is handling {self.limit} requests; retry shortly")
            return
        self.running += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.running -= 1


class RequestMetrics:
    """Counts every response by its route template (not the raw path: bounded labels), also
    for requests a guard refused before routing (``route_of`` finds their template)."""

    def __init__(
        self, app: Any, metrics: ServerMetrics, route_of: Callable[[Scope], str | None]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.route_of = route_of

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def observed_send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or self.route_of(scope) or "unmatched"
            method = scope["method"] if scope["method"] in _METHODS else "other"  # bounded labels
            self.metrics.record(method, label, status, time.perf_counter() - started)
