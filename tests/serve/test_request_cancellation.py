"""A request that times out or whose client leaves stops using the model within one batch.

The encoder here counts its batches and holds the first one until the test lets it go, so
what the model did after the request ended is counted, not timed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
from helpers import HashingEncoder
from serving import build_hashing_collection

from densekit.serve.batching import PIECE
from densekit.serve.catalog import Catalog
from densekit.serve.metrics import ServerMetrics
from densekit.serve.models import BatchSettings, ModelPool
from densekit.serve.state import ServerState


class HeldEncoder(HashingEncoder):
    """Records every document batch; the first waits until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.started = threading.Event()
        self.release = threading.Event()

    def encode_documents(self, texts, *, progress=False, token_lengths=None):
        self.batches.append(list(texts))
        self.started.set()
        self.release.wait(60)
        return super().encode_documents(texts)


def held_server(tmp_path: Path, serve_state, timeout_s: float) -> tuple[str, HeldEncoder]:
    encoder = HeldEncoder()
    metrics = ServerMetrics()
    models = ModelPool(BatchSettings(), observe=metrics.observe_batch)
    models.add(encoder)
    catalog = Catalog({"docs": build_hashing_collection(tmp_path / "docs")}, models)
    return serve_state(ServerState(catalog, models, metrics, timeout_s=timeout_s)), encoder


def many_texts(pieces: int) -> list[str]:
    return [f"a long input number {i} " * 20 for i in range(PIECE * pieces)]


def probe(url: str) -> list[str]:
    """Embed one text: queued behind whatever the model still had to do for others, so once
    it is answered, every earlier piece was either encoded or dropped."""
    answer = httpx.post(url + "/v1/embeddings", json={"model": "hashing", "input": "probe"})
    assert answer.status_code == 200
    return ["probe"]


def test_a_timed_out_request_stops_using_the_model_within_one_batch(
    tmp_path: Path, serve_state
) -> None:
    url, encoder = held_server(tmp_path, serve_state, timeout_s=0.5)
    texts = many_texts(8)
    answer = httpx.post(
        url + "/v1/embeddings", json={"model": "hashing", "input": texts}, timeout=60
    )
    assert answer.status_code == 503 and "longer than 0.5 s" in answer.json()["detail"]
    encoder.release.set()  # the batch running at the timeout finishes ...
    expected_probe = probe(url)
    # ... and it was the last one for that request: 7 pieces never reached the model.
    assert encoder.batches == [texts[:PIECE], expected_probe]


def test_repeated_timed_out_requests_do_not_pile_up(tmp_path: Path, serve_state) -> None:
    url, encoder = held_server(tmp_path, serve_state, timeout_s=0.3)
    requests = [many_texts(4) for _ in range(3)]
    for texts in requests:
        answer = httpx.post(
            url + "/v1/embeddings", json={"model": "hashing", "input": texts}, timeout=60
        )
        assert answer.status_code == 503
    encoder.release.set()
    probe(url)
    # The first request's first piece held the model; every other piece was dropped.
    assert encoder.batches == [requests[0][:PIECE], ["probe"]]


def _metric(url: str, status: str) -> float:
    for line in httpx.get(url + "/metrics").text.splitlines():
        if line.startswith("densekit_requests_total") and f'status="{status}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_client_that_leaves_stops_its_work_within_one_batch(tmp_path: Path, serve_state) -> None:
    url, encoder = held_server(tmp_path, serve_state, timeout_s=600)
    texts = many_texts(8)
    body = json.dumps({"model": "hashing", "input": texts}).encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/embeddings HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        assert encoder.started.wait(30)  # the first piece is with the model
    # The server notices the closed connection and drops the rest: counted as a 499.
    deadline = time.monotonic() + 30
    while _metric(url, "499") < 1:
        assert time.monotonic() < deadline, "the server never noticed the client leave"
        time.sleep(0.05)
    encoder.release.set()
    expected_probe = probe(url)
    assert encoder.batches == [texts[:PIECE], expected_probe]


def test_requests_beyond_the_in_flight_cap_get_503_at_once(tmp_path: Path, serve_state) -> None:
    encoder = HeldEncoder()
    models = ModelPool(BatchSettings())
    models.add(encoder)
    catalog = Catalog({"docs": build_hashing_collection(tmp_path / "docs")}, models)
    url = serve_state(ServerState(catalog, models, ServerMetrics(), threads=1))  # cap: 8
    held = [
        threading.Thread(
            target=httpx.post,
            args=(url + "/v1/embeddings",),
            kwargs={"json": {"model": "hashing", "input": f"held {i}"}, "timeout": 60},
        )
        for i in range(8)
    ]
    for thread in held:
        thread.start()
    deadline = time.monotonic() + 30
    while (answer := httpx.get(url + "/health", timeout=30)).status_code == 200:
        assert time.monotonic() < deadline, "8 held requests never filled the cap"
        time.sleep(0.05)
    assert answer.status_code == 503 and "handling 8 requests" in answer.json()["detail"]
    encoder.release.set()
    for thread in held:
        thread.join(timeout=60)
    assert httpx.get(url + "/health", timeout=30).status_code == 200
