"""`densekit mine-negatives`: training triplets with hard negatives from a collection."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int, rank_window


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "mine-negatives", help="write (query, positive, hard negatives) triplets as JSONL"
    )
    parser.add_argument("dataset", help="BEIR-layout dataset directory")
    parser.add_argument("--collection", required=True, help="a collection of its corpus")
    parser.add_argument("--out", required=True, help="triplets JSONL file to write")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    parser.add_argument(
        "--ranks", type=rank_window, default=(10, 60), help="rank window FIRST:LAST (10:60)"
    )
    parser.add_argument("--negatives", type=positive_int, default=3, help="per row (3)")
    parser.add_argument(
        "--retrievers", default="bm25,dense", help="comma-separated (default: bm25,dense)"
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.95,
        help="drop negatives the dense model scores >= MARGIN x the positive (0: no filter)",
    )
    parser.add_argument(
        "--cross-encoder", help="drop negatives this cross-encoder scores as high as the positive"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from densekit.train.mining import MiningConfig
    from densekit.train.pairs import mine_triplets

    mining = MiningConfig(
        negatives=args.negatives,
        ranks=args.ranks,
        retrievers=tuple(r.strip() for r in args.retrievers.split(",") if r.strip()),
        margin=args.margin or None,
        cross_encoder=args.cross_encoder,
    )
    result = mine_triplets(
        args.dataset,
        args.collection,
        args.out,
        mining,
        split=args.split,
        seed=args.seed,
        overwrite=args.overwrite,
    )
    print("\n".join(result.summary()))
    return 0
