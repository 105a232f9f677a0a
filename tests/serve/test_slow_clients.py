"""Slow and greedy clients: unfinished heads and bodies are cut at their deadlines, open
connections are capped, and while hundreds of slow connections are held others are served."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from serving import build_hashing_collection, hashing_state

from densekit.serve.connections import ConnectionLimits, fit_open_files

PARTIAL_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
FULL_REQUEST = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def start(tmp_path: Path, serve_state, **limits: object) -> tuple[str, int]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")})
    state.limits = ConnectionLimits(**limits)  # type: ignore[arg-type]
    url = serve_state(state)
    return url, int(url.rsplit(":", 1)[1])


@contextmanager
def connection(port: int) -> Iterator[socket.socket]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        yield sock


def read_until_closed(sock: socket.socket) -> tuple[bytes, dict]:
    """The server's whole answer on ``sock`` (it must close the connection after it)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body) if body else {}


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if b"content-length" in line
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0]


def test_others_are_served_while_600_unfinished_heads_are_held(tmp_path: Path, serve_state) -> None:
    fit_open_files(ConnectionLimits(max_connections=1500))  # both ends live in this process
    url, port = start(tmp_path, serve_state, header_timeout_s=600)
    with ExitStack() as held:
        slow = [held.enter_context(connection(port)) for _ in range(600)]
        for sock in slow:
            sock.sendall(PARTIAL_HEAD)
        with httpx.Client(base_url=url, timeout=30) as client:
            for _ in range(5):  # fresh connections, one after another
                answer = client.post("/search", json={"collection": "docs", "query": "cat"})
                assert answer.status_code == 200
                assert httpx.get(url + "/health", timeout=30).status_code == 200
        for sock in slow:  # and the slow ones were held: open, nothing to read
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(1)


def test_a_head_that_does_not_arrive_in_time_gets_408(tmp_path: Path, serve_state) -> None:
    _, port = start(tmp_path, serve_state, header_timeout_s=0.5)
    with connection(port) as sock:
        sock.sendall(PARTIAL_HEAD)
        status, body = read_until_closed(sock)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert "0.5 s" in body["detail"]
    with connection(port) as idle:  # nothing sent: closed quietly, as after keep-alive
        assert idle.recv(1) == b""


def test_every_request_on_a_kept_alive_connection_has_a_head_deadline(
    tmp_path: Path, serve_state
) -> None:
    _, port = start(tmp_path, serve_state, header_timeout_s=0.5, keep_alive_s=60)
    with connection(port) as sock:
        for _ in range(2):
            sock.sendall(FULL_REQUEST)
            assert read_response(sock) == b"HTTP/1.1 200 OK"
        sock.sendall(PARTIAL_HEAD)  # then trickles the next one
        status, _ = read_until_closed(sock)
    assert status == b"HTTP/1.1 408 Request Timeout"


def test_a_body_that_does_not_arrive_in_time_gets_408(tmp_path: Path, serve_state) -> None:
    _, port = start(tmp_path, serve_state, body_timeout_s=0.5)
    with connection(port) as sock:
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 100\r\n\r\n{"collection": '
        )
        status, body = read_until_closed(sock)
    assert status == b"HTTP/1.1 408 Request Timeout"
    assert "within 0.5 s" in body["detail"]


def test_connections_are_capped_per_client_and_in_all(tmp_path: Path, serve_state) -> None:
    _, port = start(tmp_path, serve_state, max_per_client=3, cap_loopback_peers=True)
    with ExitStack() as held:
        kept = [held.enter_context(connection(port)) for _ in range(3)]
        with connection(port) as extra:
            status, body = read_until_closed(extra)
        assert status.startswith(b"HTTP/1.1 503") and "this address" in body["detail"]
        kept[0].sendall(FULL_REQUEST)  # those within the cap still work
        assert read_response(kept[0]) == b"HTTP/1.1 200 OK"

    _, port = start(tmp_path / "all", serve_state, max_connections=2)
    with ExitStack() as held:
        kept = [held.enter_context(connection(port)) for _ in range(2)]
        with connection(port) as extra:
            status, body = read_until_closed(extra)
        assert status.startswith(b"HTTP/1.1 503") and "its limit" in body["detail"]
        kept[1].sendall(FULL_REQUEST)
        assert read_response(kept[1]) == b"HTTP/1.1 200 OK"


def test_loopback_peers_are_not_capped_per_client(tmp_path: Path, serve_state) -> None:
    # A reverse proxy in front connects from loopback for all its clients.
    _, port = start(tmp_path, serve_state, max_per_client=2)
    with ExitStack() as held:
        kept = [held.enter_context(connection(port)) for _ in range(5)]
        kept[4].sendall(FULL_REQUEST)
        assert read_response(kept[4]) == b"HTTP/1.1 200 OK"
