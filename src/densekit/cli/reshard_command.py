"""`densekit reshard`: split a collection into another number of shards."""

from __future__ import annotations

import argparse

from densekit.store.resharding import reshard


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reshard",
        help="split a collection (sharded or not) into N shards, reusing its stored vectors",
    )
    parser.add_argument("collection", help="collection directory")
    parser.add_argument(
        "--shards",
        type=int,
        required=True,
        metavar="N",
        help="shards to route the documents to, by a hash of each id (docs/scale.md)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    with reshard(args.collection, args.shards, progress=not args.quiet) as sharded:
        sizes = ", ".join(str(len(shard)) for shard in sharded.shards)
        print(
            f"resharded {args.collection}: {len(sharded)} documents in {len(sharded.shards)} "
            f"shards ({sizes})"
        )
    return 0
