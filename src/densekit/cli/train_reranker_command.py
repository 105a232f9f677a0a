"""`densekit train-reranker`: fine-tune a cross-encoder on a dataset's training judgements."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.train_command import report_result
from densekit.train.mining import MiningConfig
from densekit.train.reranker import RerankerConfig, RerankerTraining, train_reranker


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
    settings = RerankerTraining(
        base=args.base,
        epochs=args.epochs,
        batch=args.batch,
        learning_rate=args.lr,
        max_length=args.max_length,
        negatives=args.negatives,
        mining=MiningConfig.window(depth=args.depth, skip=args.skip, margin=None),
        dev_share=args.dev_share,
        seed=args.seed,
    )
    config = RerankerConfig(
        args.dataset,
        args.collection,
        args.out,
        split=args.split,
        settings=settings,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    return report_result(train_reranker(config), as_json=args.json)
