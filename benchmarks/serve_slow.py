"""Slow clients and a timed-out request against a running `densekit serve` (the end of the
`hardening` section of benchmarks/serve.py; benchmarks/serve_hardening.py says what and how)."""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections import Counter
from typing import Any

import httpx

SLOW_HEADS = 600
SLOW_BODIES = 50


def _search_latencies(url: str, seconds: float, queries: list[str]) -> dict[str, Any]:
    latencies, statuses = [], Counter()
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=url, timeout=60) as http:
        i = 0
        while time.monotonic() < deadline:
            body = {"collection": "scifact", "query": queries[i % len(queries)], "k": 10}
            started = time.perf_counter()
            answer = http.post("/search", json=body, headers={"Connection": "close"})
            latencies.append(time.perf_counter() - started)
            statuses[answer.status_code] += 1
            i += 1
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "statuses": dict(statuses),
        "p50_ms": round(1000 * ordered[len(ordered) // 2], 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
    }


def slow_clients(url: str, queries: list[str], measure_s: float = 8.0) -> dict[str, Any]:
    """Hold SLOW_HEADS unfinished heads and SLOW_BODIES trickled bodies while a client searches;
    then wait for the server to cut them."""
    host, port = url.removeprefix("http://").split(":")
    baseline = _search_latencies(url, measure_s / 2, queries)
    selector = selectors.DefaultSelector()
    opened = time.monotonic()
    bodies: list[socket.socket] = []
    for i in range(SLOW_HEADS + SLOW_BODIES):
        sock = socket.create_connection((host, int(port)), timeout=30)
        if i < SLOW_HEADS:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            kind = "head"
        else:
            sock.sendall(
                b"POST /search HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 100000\r\n\r\n{"
            )
            bodies.append(sock)
            kind = "body"
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, {"kind": kind, "answer": b""})
    held_for = time.monotonic() - opened
    during = _search_latencies(url, measure_s, queries)
    closed: dict[str, list[float]] = {"head": [], "body": []}
    answers: Counter[str] = Counter()
    open_when_measured = len(selector.get_map())
    deadline = time.monotonic() + 90
    next_trickle = time.monotonic()
    while selector.get_map() and time.monotonic() < deadline:
        if time.monotonic() >= next_trickle:  # one byte a second from each slow body
            for sock in bodies:
                if sock.fileno() != -1:
                    with contextlib.suppress(OSError):
                        sock.send(b" ")
            next_trickle += 1.0
        for key, _ in selector.select(timeout=0.2):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, BlockingIOError):
                chunk = b""
            if chunk:
                key.data["answer"] += chunk
                continue
            selector.unregister(sock)
            closed[key.data["kind"]].append(time.monotonic() - opened)
            answers[key.data["answer"].split(b"\r\n", 1)[0].decode("latin-1") or "closed"] += 1
            sock.close()
    still_open = len(selector.get_map())
    for key in list(selector.get_map().values()):
        key.fileobj.close()  # type: ignore[union-attr]
    return {
        "slow_heads": SLOW_HEADS,
        "slow_bodies": SLOW_BODIES,
        "seconds_to_open_them": round(held_for, 2),
        "open_while_measured": open_when_measured,
        "searches_quiet": baseline,
        "searches_while_held": during,
        "heads_cut_after_s": _span(closed["head"]),
        "bodies_cut_after_s": _span(closed["body"]),
        "answers_to_slow_connections": dict(answers),
        "still_open_after_90_s": still_open,
    }


def _span(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"first": round(min(values), 1), "last": round(max(values), 1), "count": len(values)}


def _model_calls(url: str) -> int:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("densekit_encode_batch_size_count"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def timed_out_request(url: str, texts: list[str], inputs: int = 1024) -> dict[str, Any]:
    long_inputs = [" ".join(texts[i % len(texts)].split()[:300]) for i in range(inputs)]
    before = _model_calls(url)
    started = time.perf_counter()
    answer = httpx.post(
        url + "/v1/embeddings",
        json={"model": "minilm", "input": long_inputs},
        timeout=600,
    )
    answered_s = time.perf_counter() - started
    at_answer = _model_calls(url)
    probe_started = time.perf_counter()
    probe = httpx.post(
        url + "/v1/embeddings", json={"model": "minilm", "input": "probe"}, timeout=600
    )
    probe_s = time.perf_counter() - probe_started
    after_probe = _model_calls(url)
    return {
        "inputs": inputs,
        "status": answer.status_code,
        "answered_after_s": round(answered_s, 2),
        "model_calls_before_answer": at_answer - before,
        "model_calls_for_it_after_answer": after_probe - at_answer - 1,  # less the probe's own
        "pieces_of_64": -(-inputs // 64),
        "probe_status": probe.status_code,
        "probe_answered_after_s": round(probe_s, 2),
    }
