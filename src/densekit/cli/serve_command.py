"""`densekit serve`: an HTTP search and embedding server over collections."""

from __future__ import annotations

import argparse
import sys

from densekit.cli.arguments import positive_int
from densekit.errors import MissingDependencyError


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
    parser.add_argument("--host", default="127.0.0.1", help="default: loopback only")
    parser.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    parser.add_argument(
        "--api-key-file", help="a file holding the key that write endpoints require"
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
        "--no-batching", action="store_true", help="encode every request on its own"
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
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        from densekit.serve.catalog import collection_names
        from densekit.serve.models import BatchSettings
        from densekit.serve.server import ServeOptions, open_state, run_server
    except ImportError as exc:
        raise MissingDependencyError(exc.name or "fastapi", "serve") from None
    if not 0 <= args.port <= 65535:
        from densekit.errors import InputError

        raise InputError(f"--port must be 0 to 65535, got {args.port}")
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
    )
    state = open_state(
        collection_names(args.collections),
        pipelines=args.pipeline,
        models=args.model,
        options=options,
    )
    try:
        run_server(state, args.host, args.port)
    except KeyboardInterrupt:  # Ctrl-C: requests in flight were answered before this
        print("densekit: server stopped", file=sys.stderr)
    return 0
