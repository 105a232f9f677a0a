"""Starting a server: open the collections and models, then run the app under uvicorn."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from densekit.errors import InputError
from densekit.retrieve.pipeline import Pipeline
from densekit.serve.app import ServerState, create_app
from densekit.serve.catalog import Catalog
from densekit.serve.metrics import ServerMetrics
from densekit.serve.models import BatchSettings, ModelPool
from densekit.serve.security import read_api_key


@dataclass(frozen=True)
class ServeOptions:
    """How a server runs; the defaults suit one machine serving a few users."""

    batching: BatchSettings = field(default_factory=BatchSettings)
    api_key_file: str | Path | None = None
    timeout_s: float = 30.0
    threads: int = 64
    max_body_bytes: int = 8 * 1024 * 1024

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
    catalog = Catalog(collections, pool)
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
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(state: ServerState, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve until SIGINT/SIGTERM; requests in flight are finished before it stops."""
    import uvicorn
    from threadpoolctl import threadpool_limits

    if not is_loopback(host) and state.api_key is None:
        print(
            f"densekit: warning: serving on {host} without --api-key-file: anyone who can "
            "reach this port can change the collections",
            file=sys.stderr,
        )
    if is_loopback(host):
        state.allowed_hosts = ["127.0.0.1", "localhost", "::1", "[::1]"]
    config = uvicorn.Config(
        create_app(state),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=state.timeout_s + 5,
        limit_concurrency=state.threads * 8,  # beyond this, 503 at once instead of a queue
        access_log=False,
    )
    server = uvicorn.Server(config)
    print(
        f"densekit: serving {', '.join(state.catalog.names)} on http://{host}:{port}/ "
        "(Ctrl-C to stop)",
        file=sys.stderr,
        flush=True,
    )
    # Concurrent requests already spread over the cores; a multi-threaded BLAS call per request
    # (the exact index's matrix product) would make OpenBLAS's spinning threads fight the model
    # and each other, which halves throughput under load. The model keeps its own threads.
    with threadpool_limits(limits=1, user_api="blas"):
        server.run()
