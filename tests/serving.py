"""A real densekit server on a loopback port, over hashing-encoded collections (fixtures
``serve_state`` and ``server``, registered by conftest)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import HashingEncoder

from densekit.retrieve import build_collection
from densekit.serve.catalog import Catalog
from densekit.serve.metrics import ServerMetrics
from densekit.serve.models import BatchSettings, ModelPool
from densekit.serve.shard_batching import ShardBatching
from densekit.serve.state import ServerState
from densekit.store import BuildOptions

API_KEY = "test-key-0123456789abcdef"


@dataclass
class RunningServer:
    url: str
    state: ServerState
    directory: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def build_hashing_collection(out: Path, documents: list[dict] | None = None) -> Path:
    from conftest import DOCUMENTS, write_jsonl

    corpus = write_jsonl(out.parent / f"{out.name}-corpus.jsonl", documents or DOCUMENTS)
    build_collection(
        corpus, out, BuildOptions(progress=False, cache_dir=None), encoder=HashingEncoder()
    ).close()
    return out


def hashing_state(
    directories: dict[str, Path],
    *,
    api_key: str | None = API_KEY,
    batching: BatchSettings | None = None,
    **settings: object,
) -> ServerState:
    metrics = ServerMetrics()
    batching = batching or BatchSettings()
    models = ModelPool(batching, observe=metrics.observe_batch)
    models.add(HashingEncoder())
    shards = ShardBatching(batching.max_batch, batching.max_wait_ms, metrics.observe_shard_batch)
    return ServerState(
        catalog=Catalog(directories, models, shard_batching=shards),
        models=models,
        metrics=metrics,
        api_key=api_key,
        **settings,  # type: ignore[arg-type]
    )


@pytest.fixture
def serve_state():
    """Start a server for a state in a thread, as `densekit serve` runs it (its socket, its
    connection limits); stops it (gracefully) at the end."""
    from densekit.serve.connections import listen
    from densekit.serve.server import make_server

    servers: list[tuple[object, threading.Thread]] = []

    def start(state: ServerState) -> str:
        sock = listen("127.0.0.1", 0)
        server = make_server(state)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        servers.append((server, thread))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True  # type: ignore[attr-defined]
        thread.join(timeout=20)


@pytest.fixture
def server(tmp_path: Path, serve_state) -> Iterator[RunningServer]:
    """One collection, ``docs``, of the suite's five documents; writes need API_KEY."""
    directory = build_hashing_collection(tmp_path / "docs")
    state = hashing_state({"docs": directory})
    yield RunningServer(serve_state(state), state, directory)
