"""Connections: the listening socket, and limits on what a slow or greedy client can hold.

uvicorn reads request heads without a deadline, and its concurrency limit counts open
connections, so 600 connections that never finish their headers used to turn every other
request away with a 503. Here a connection must deliver each request head within
``header_timeout_s`` (else 408, closed), connections are capped in total and per remote client
address; unfinished connections cost a socket, not a request
slot. Bodies have their own deadline (:class:`densekit.serve.middleware.BodyLimit`).
"""

from __future__ import annotations

import asyncio
import errno
import json
import resource
import socket
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from densekit.errors import DensekitError, InputError
from densekit.serve.security import is_loopback

# Sockets the process needs besides its connections: collections, models, logs.
_SPARE_FILES = 256


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client connection may take (docs/deploying.md); flags of `densekit serve`."""

    # --header-timeout: a request head, from the connection opening or the previous answer
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0  # --body-timeout: a whole body, after its head
    keep_alive_s: float = 5.0  # --keep-alive: an idle connection between requests
    max_connections: int = 1024  # --max-connections: open at once, all clients
    # --max-connections-per-client, per remote address (None: no cap). Loopback peers are this
    # machine or the reverse proxy in front, which must cap its own clients: not capped unless
    # cap_loopback_peers.
    max_per_client: int | None = 64
    cap_loopback_peers: bool = False
    max_header_bytes: int = 16 * 1024  # a request line and headers (h11's own default)

    def __post_init__(self) -> None:
        for flag, value in (
            ("--header-timeout", self.header_timeout_s),
            ("--body-timeout", self.body_timeout_s),
            ("--keep-alive", self.keep_alive_s),
        ):
            if not 0 < value <= 3600:
                raise InputError(f"{flag} must be in (0, 3600] seconds, got {value}")
        if self.max_connections < 1:
            raise InputError(f"--max-connections must be at least 1, got {self.max_connections}")
        if self.max_per_client is not None and self.max_per_client < 1:
            raise InputError(
                f"--max-connections-per-client must be at least 1, got {self.max_per_client}"
            )


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (0: any free port), or a :class:`DensekitError` saying
    why not, before anything is loaded or announced."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio turns Nagle's algorithm off only on sockets that say
    # they are TCP; with it on, a response's head and body wait out the client's delayed ACK
    # (~40 ms a request). TCP_NODELAY here too, which accepted connections inherit.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise DensekitError(
                f"cannot listen on {shown}: the port is in use (another server?); stop it or "
                "choose another --port (--port 0 picks a free one)"
            ) from None
        reason = exc.strerror or str(exc)
        raise DensekitError(f"cannot listen on {shown}: {reason}; check --host") from None
    sock.set_inheritable(True)
    return sock


def bound_port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def fit_open_files(limits: ConnectionLimits) -> tuple[ConnectionLimits, str | None]:
    """Raise the open-file limit to what ``limits`` needs (up to the hard limit); if even that
    is too low, lower ``max_connections`` to fit and say so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limits.max_connections + _SPARE_FILES
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(1, soft - _SPARE_FILES)
        note = (
            f"--max-connections lowered from {limits.max_connections} to {fitted}: this process "
            f"may open {soft} files (ulimit -n)"
        )
        return replace(limits, max_connections=fitted), note
    return limits, None


def _raw_response(status: int, reason: str, detail: str) -> bytes:
    body = json.dumps({"detail": detail}).encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def guarded_protocol(limits: ConnectionLimits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP/1.1 protocol with ``limits`` enforced; one class (and one count of
    connections per client) per server."""
    per_client: Counter[str] = Counter()

    class GuardedH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None
        _peer: str | None = None
        _head_started = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._peer = self.client[0] if self.client else ""
            per_client[self._peer] += 1
            if len(self.connections) > limits.max_connections:
                self._refuse(
                    503,
                    "Service Unavailable",
                    f"the server holds {limits.max_connections} connections, its limit; retry "
                    "shortly",
                )
            elif self._capped() and per_client[self._peer] > limits.max_per_client:
                self._refuse(
                    503,
                    "Service Unavailable",
                    f"this address holds {limits.max_per_client} connections to the server, "
                    "its limit; reuse them (keep-alive) or close some",
                )
            else:
                self._await_head()

        def _capped(self) -> bool:
            if limits.max_per_client is None:
                return False
            return limits.cap_loopback_peers or not is_loopback(self._peer or "")

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            if self._peer is not None:
                per_client[self._peer] -= 1
                if per_client[self._peer] <= 0:
                    del per_client[self._peer]
                self._peer = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            waiting = self.cycle
            self._head_started = True
            super().data_received(data)
            if self.cycle is not waiting:  # a whole request head arrived
                self._stop_head_timer()

        def on_response_complete(self) -> None:
            finished = self.cycle
            super().on_response_complete()
            # The next request's head gets its own deadline (unless one was pipelined).
            if self.cycle is finished and not self.transport.is_closing():
                self._await_head()

        def _await_head(self) -> None:
            self._stop_head_timer()
            self._head_started = False
            self._head_timer = self.loop.call_later(limits.header_timeout_s, self._head_late)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if not self._head_started:  # idle: just close, as keep-alive does
                self.transport.close()
                return
            self._refuse(
                408,
                "Request Timeout",
                f"the request head did not arrive within {limits.header_timeout_s:g} s",
            )

        def send_400_response(self, msg: str) -> None:
            # uvicorn's own answer to a malformed request is plain text; every answer is JSON.
            self._refuse(400, "Bad Request", f"a malformed HTTP request: {msg}")

        def _refuse(self, status: int, reason: str, detail: str) -> None:
            self._stop_head_timer()
            self.transport.write(_raw_response(status, reason, detail))
            self.transport.close()

    return GuardedH11Protocol


def uvicorn_config_options(limits: ConnectionLimits) -> dict[str, Any]:
    """The uvicorn settings that go with ``limits``."""
    return {
        "http": guarded_protocol(limits),
        "timeout_keep_alive": limits.keep_alive_s,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
        # uvicorn's own limit counts open connections, idle ones included: it is what let slow
        # clients lock everyone out. Requests in flight are capped by the app instead.
        "limit_concurrency": None,
    }
