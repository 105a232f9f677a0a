"""`densekit serve`: an HTTP search and embedding server over collections."""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

from densekit.cli.arguments import positive_int
from densekit.cli.ray_arguments import add_ray_arguments, on_cluster
from densekit.errors import InputError, MissingDependencyError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve collections over HTTP (search, /v1/embeddings, writes, a search page)",
        description="Serve collections over HTTP. Open http://HOST:PORT/ for the search page; "
        "the API's OpenAPI spec is at /openapi.json.",
    )
    parser.add_argument(
        "collections",
        nargs="+",
        metavar="DIR",
        help="collection directories, named by their folder, or NAME=DIR",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="default: loopback only; elsewhere, writes need --api-key-file",
    )
    parser.add_argument(
        "--port", type=int, default=8000, help="default: %(default)s; 0 picks a free one"
    )
    parser.add_argument(
        "--api-key-file", help="a file holding the key that write endpoints require"
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="let web pages from ORIGIN (scheme://host[:port]) call the server (repeatable; "
        "pages from other sites are refused)",
    )
    parser.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="FILE",
        help="a pipeline TOML to serve by its name (repeatable)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="also serve this model on /v1/embeddings (repeatable; collections' models are)",
    )
    parser.add_argument(
        "--max-batch",
        type=positive_int,
        default=64,
        help="texts per model call when batching concurrent requests (default: %(default)s)",
    )
    parser.add_argument(
        "--max-wait-ms",
        type=float,
        default=5.0,
        help="how long a batch waits for more requests (default: %(default)s)",
    )
    parser.add_argument(
        "--no-batching",
        action="store_true",
        help="encode every request on its own (and search a sharded collection's shards so)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per request (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=positive_int, default=64, help="worker threads (default: %(default)s)"
    )
    parser.add_argument(
        "--max-body-mb",
        type=float,
        default=8.0,
        help="largest request body in MiB (default: %(default)s)",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per request on stdout: client, request line, status (default: off)",
    )
    limits = parser.add_argument_group("connection limits (docs/deploying.md)")
    limits.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="seconds a request's headers may take to arrive, from the connection opening or "
        "the previous answer (default: %(default)s)",
    )
    limits.add_argument(
        "--body-timeout",
        type=float,
        default=30.0,
        help="seconds a request's body may take to arrive (default: %(default)s)",
    )
    limits.add_argument(
        "--keep-alive",
        type=float,
        default=5.0,
        help="seconds an idle connection is kept open (default: %(default)s)",
    )
    limits.add_argument(
        "--max-connections",
        type=positive_int,
        default=1024,
        help="connections open at once (default: %(default)s)",
    )
    limits.add_argument(
        "--max-connections-per-client",
        type=positive_int,
        default=64,
        help="connections open at once from one remote address; loopback peers (a proxy in "
        "front) are not capped (default: %(default)s)",
    )
    add_ray_arguments(parser, workers=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from densekit.serve.catalog import check_directories, collection_names
        from densekit.serve.connections import ConnectionLimits, listen
        from densekit.serve.models import BatchSettings
        from densekit.serve.server import ServeOptions, open_state, run_server
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be 0 to 65535, got {args.port}")
    if not (math.isfinite(args.max_body_mb) and args.max_body_mb >= 0.001):
        raise InputError(
            "--max-body-mb must be a finite number of MiB, at least 0.001 (1 KiB), got "
            f"{args.max_body_mb:g}"
        )
    batching = BatchSettings(
        max_batch=1 if args.no_batching else args.max_batch,
        max_wait_ms=0.0 if args.no_batching else args.max_wait_ms,
    )
    options = ServeOptions(
        batching=batching,
        api_key_file=args.api_key_file,
        timeout_s=args.timeout,
        threads=args.threads,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        allow_origins=args.allow_origin,
        access_log=args.access_log,
        limits=ConnectionLimits(
            header_timeout_s=args.header_timeout,
            body_timeout_s=args.body_timeout,
            keep_alive_s=args.keep_alive,
            max_connections=args.max_connections,
            max_per_client=args.max_connections_per_client,
        ),
    )
    names = collection_names(args.collections)
    check_directories(names)
    # The port is taken before the models load: a busy one is a one-line error at once.
    sock = listen(args.host, args.port)
    try:
        with on_cluster(args) as opener:
            if opener is not None:
                options = replace(options, opener=opener)
            state = open_state(names, pipelines=args.pipeline, models=args.model, options=options)
            run_server(state, sock)
    except KeyboardInterrupt:  # Ctrl-C: requests in flight were answered before this
        print("densekit: server stopped", file=sys.stderr)
    finally:
        sock.close()
    return 0
