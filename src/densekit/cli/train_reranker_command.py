"""`densekit train-reranker`: fine-tune a cross-encoder on a dataset's training judgements."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json, warn
from densekit.train.negatives import MiningConfig
from densekit.train.reranker import RerankerTraining, train_reranker


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
    parser.add_argument("--epochs", type=positive_int, default=defaults.epochs)
    parser.add_argument(
        "--batch", type=positive_int, default=defaults.batch, help="queries per step"
    )
    parser.add_argument("--lr", type=float, default=defaults.learning_rate)
    parser.add_argument("--max-length", type=positive_int, default=defaults.max_length)
    parser.add_argument(
        "--negatives",
        type=positive_int,
        default=defaults.negatives,
        help="hard negatives per query and epoch (default: %(default)s)",
    )
    parser.add_argument(
        "--depth", type=positive_int, default=defaults.mining.depth, help="mining depth"
    )
    parser.add_argument(
        "--skip", type=int, default=defaults.mining.skip, help="top ranks never used as negatives"
    )
    parser.add_argument(
        "--dev-share",
        type=float,
        default=defaults.dev_share,
        help="share of queries held out to check the trained model (default: %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    mining = MiningConfig(depth=args.depth, skip=args.skip, seed=args.seed)
    settings = RerankerTraining(
        base=args.base,
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        max_length=args.max_length,
        negatives=args.negatives,
        mining=mining,
        dev_share=args.dev_share,
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
    if report.dev is not None and not report.dev.learned:
        warn(
            f"on {report.dev.queries} held-out queries the model orders only "
            f"{report.dev.pair_accuracy:.0%} of positive/negative pairs correctly; it has not "
            "learned to rank: train longer (--epochs) or with another --lr"
        )
    if args.json:
        print_json(report.to_dict())
    else:
        print(
            f"trained {args.out}: {report.queries} queries, {report.rows} rows "
            f"({report.positives} positive and {report.negatives} negative passages), "
            f"in {report.seconds:.0f} s"
        )
        if report.dev is not None:
            print(
                f"held-out check: {report.dev.queries} queries, pair accuracy "
                f"{report.dev.pair_accuracy:.3f}, MRR {report.dev.mrr:.3f}"
            )
    return 0
