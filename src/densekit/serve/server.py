"""Starting a server: open the collections and models, then run the app under uvicorn on a
socket bound beforehand (so a busy port is an error before anything loads)."""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.retrieve.pipeline import Pipeline
from densekit.serve.app import create_app
from densekit.serve.catalog import Catalog
from densekit.serve.connections import (
    ConnectionLimits,
    bound_port,
    fit_open_files,
    uvicorn_config_options,
)
from densekit.serve.guards import normalise_origin
from densekit.serve.metrics import ServerMetrics
from densekit.serve.models import BatchSettings, ModelPool
from densekit.serve.security import read_api_key
from densekit.serve.shard_batching import ShardBatching
from densekit.serve.state import ServerState
from densekit.store.sharded import StoreOpener, open_store


@dataclass(frozen=True)
class ServeOptions:
    """How a server runs; the defaults suit one machine serving a few users."""

    batching: BatchSettings = field(default_factory=BatchSettings)
    api_key_file: str | Path | None = None
    timeout_s: float = 30.0
    threads: int = 64
    max_body_bytes: int = 8 * 1024 * 1024
    allow_origins: Sequence[str] = ()  # web pages' origins allowed to call the server
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    access_log: bool = False  # one line per request on stdout (uvicorn's format)
    # Opens each collection's store: open_store, or one searching shards on a cluster
    # (densekit.distributed.shard_actors.ray_opener).
    opener: StoreOpener = open_store

    def __post_init__(self) -> None:
        if not 0 < self.timeout_s <= 3600:
            raise InputError(f"--timeout must be in (0, 3600] seconds, got {self.timeout_s}")
        if not 1 <= self.threads <= 1024:
            raise InputError(f"--threads must be 1 to 1024, got {self.threads}")
        if self.max_body_bytes < 1024:
            raise InputError(f"the body limit must be at least 1 KiB, got {self.max_body_bytes}")


def open_state(
    collections: Mapping[str, str | Path],
    *,
    pipelines: Sequence[str | Path] = (),
    models: Sequence[str] = (),
    options: ServeOptions | None = None,
) -> ServerState:
    """Open every collection, its model and the pipelines, ready for :func:`create_app`."""
    options = options or ServeOptions()
    metrics = ServerMetrics()
    batching = replace(options.batching, timeout_s=options.timeout_s)
    pool = ModelPool(batching, observe=metrics.observe_batch)
    named: dict[str, Pipeline] = {}
    for path in pipelines:
        pipeline = Pipeline.from_toml(path)
        if pipeline.name in named:
            raise InputError(f"{path}: a second pipeline named {pipeline.name!r}; rename one")
        named[pipeline.name] = pipeline
    api_key = read_api_key(options.api_key_file) if options.api_key_file else None
    shard_batching = ShardBatching(
        batching.max_batch, batching.max_wait_ms, observe=metrics.observe_shard_batch
    )
    catalog = Catalog(collections, pool, options.opener, shard_batching)
    for model in models:
        pool.add(model)
    return ServerState(
        catalog=catalog,
        models=pool,
        metrics=metrics,
        pipelines=named,
        api_key=api_key,
        timeout_s=options.timeout_s,
        threads=options.threads,
        max_body_bytes=options.max_body_bytes,
        allowed_origins=[normalise_origin(origin) for origin in options.allow_origins],
        limits=options.limits,
        access_log=options.access_log,
    )


def make_server(state: ServerState) -> Any:
    """A uvicorn server for ``state``'s app, with its connection limits; run it on a socket
    from :func:`densekit.serve.connections.listen`."""
    import uvicorn

    config = uvicorn.Config(
        create_app(state),
        log_level="warning",
        timeout_graceful_shutdown=int(state.timeout_s + 5),
        access_log=state.access_log,
        **uvicorn_config_options(state.limits),
    )
    if state.access_log:  # its lines are INFO, below the warnings-only level of the rest
        logging.getLogger("uvicorn.access").setLevel(logging.INFO)
    return uvicorn.Server(config)


def announcement(state: ServerState, sock: socket.socket, note: str | None = None) -> str:
    """What `densekit serve` says at start: where it listens (the port bound, when 0 was
    asked), and, one line each, what it refuses and any limit it had to lower."""
    host = str(sock.getsockname()[0])
    shown = f"[{host}]" if ":" in host else host
    lines = [
        f"densekit: serving {', '.join(state.catalog.names)} on "
        f"http://{shown}:{bound_port(sock)}/ (Ctrl-C to stop)"
    ]
    if state.read_only:
        lines.append(
            f"densekit: warning: listening on {host} without --api-key-file: reads only, "
            "writes are refused (give --api-key-file FILE to take them)"
        )
    elif state.api_key is None:
        lines.append(
            "densekit: note: no --api-key-file: writes are taken from this machine only "
            "(loopback), from any program on it; other sites' pages are refused"
        )
    if note is not None:
        lines.append(f"densekit: warning: {note}")
    return "\n".join(lines)


def run_server(state: ServerState, sock: socket.socket) -> None:
    """Serve on ``sock`` (from :func:`densekit.serve.connections.listen`) until SIGINT or
    SIGTERM; requests in flight are finished before it stops."""
    from threadpoolctl import threadpool_limits

    state.host = str(sock.getsockname()[0])
    state.limits, note = fit_open_files(state.limits)
    server = make_server(state)
    print(announcement(state, sock, note), file=sys.stderr, flush=True)
    # Concurrent requests already spread over the cores; a multi-threaded BLAS call per request
    # (the exact index's matrix product) would make OpenBLAS's spinning threads fight the model
    # and each other, which halves throughput under load. The model keeps its own threads.
    with threadpool_limits(limits=1, user_api="blas"):
        server.run(sockets=[sock])
