"""`densekit reindex`: give a collection another dense index, reusing its stored vectors."""

from __future__ import annotations

import argparse

from densekit.index.spec import GRAMMAR
from densekit.store.reindexing import reindex_collection


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reindex",
        help="index a collection's dense vectors with another spec (nothing is encoded again)",
    )
    parser.add_argument("collection", help="collection directory")
    parser.add_argument("--index", required=True, metavar="SPEC", help=f"the new index: {GRAMMAR}")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    manifest = reindex_collection(args.collection, args.index)
    change = manifest.stats["reindexed"]
    assert manifest.dense is not None  # reindexing refuses collections without vectors
    print(
        f"reindexed {args.collection}: {change['from']} → {change['to']} over "
        f"{manifest.dense.rows} vectors"
    )
    return 0
