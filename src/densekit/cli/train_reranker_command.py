"""`densekit train-reranker`: fine-tune a cross-encoder on a dataset's training judgements."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json, warn
from densekit.train import MiningConfig, RerankerTraining, train_reranker


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-reranker", help="fine-tune a cross-encoder reranker on training qrels"
    )
    parser.add_argument("dataset", help="BEIR-layout dataset directory")
    parser.add_argument(
        "--collection",
        required=True,
        help="a collection of the dataset's corpus, to mine hard negatives from",
    )
    parser.add_argument("--out", required=True, help="folder for the trained CrossEncoder")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    defaults = RerankerTraining()
    parser.add_argument(
        "--base", default=defaults.base, help="starting model (default: %(default)s)"
    )
    parser.add_argument("--epochs", type=float, default=defaults.epochs)
    parser.add_argument("--batch", type=positive_int, default=defaults.batch)
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-length", type=positive_int, default=defaults.max_length)
    parser.add_argument(
        "--negatives", type=positive_int, default=defaults.mining.per_query, help="per query"
    )
    parser.add_argument(
        "--depth", type=positive_int, default=defaults.mining.depth, help="mining depth"
    )
    parser.add_argument(
        "--skip", type=int, default=defaults.mining.skip, help="top ranks never used as negatives"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    mining = MiningConfig(
        per_query=args.negatives, depth=args.depth, skip=args.skip, seed=args.seed
    )
    settings = RerankerTraining(
        base=args.base,
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        max_length=args.max_length,
        mining=mining,
        seed=args.seed,
    )
    report = train_reranker(
        args.dataset,
        args.collection,
        args.out,
        split=args.split,
        settings=settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    if report.skipped_queries:
        warn(f"{report.skipped_queries} queries have no relevant document in the collection")
    if report.unknown_documents:
        warn(f"{report.unknown_documents} judged documents are not in the collection; skipped")
    if args.json:
        print_json(report.to_dict())
    else:
        print(
            f"trained {args.out}: {report.queries} queries, {report.positives} positive and "
            f"{report.negatives} negative pairs, in {report.seconds:.0f} s"
        )
    return 0
