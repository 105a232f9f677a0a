"""`densekit mine-negatives`: training triplets with hard negatives from a collection."""

from __future__ import annotations

import argparse
from pathlib import Path

from densekit.cli.arguments import positive_int, rank_window
from densekit.errors import InputError


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
    from densekit.evaluate.beir import load_beir
    from densekit.store.collection import Collection
    from densekit.train.pairs import training_examples, write_triplets
    from densekit.train.recipe import DataRecipe, Recipe

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise InputError(f"{out}: exists; pass --overwrite to replace it")
    recipe = DataRecipe(
        negatives=args.negatives,
        ranks=args.ranks,
        retrievers=tuple(r.strip() for r in args.retrievers.split(",") if r.strip()),
        margin=args.margin or None,
        cross_encoder=args.cross_encoder,
    )
    Recipe(data=recipe)  # checks the window, margin and retrievers like a recipe file's
    with Collection(args.collection) as collection:
        examples = training_examples(
            load_beir(args.dataset, args.split), recipe, collection=collection, seed=args.seed
        )
    write_triplets(examples, out)
    print(
        f"wrote {out}: {len(examples.rows)} rows for {examples.queries} queries, "
        f"{examples.dropped_negatives} negatives dropped as likely relevant"
    )
    return 0
