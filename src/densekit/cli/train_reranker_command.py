"""`densekit train-reranker`: fine-tune a cross-encoder or an MVP listwise reranker on a
dataset's training judgements."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.train_command import report_result
from densekit.errors import InputError
from densekit.train.mining import MiningConfig
from densekit.train.multiview import MultiViewTraining
from densekit.train.reranker import RERANKER_KINDS, RerankerConfig, RerankerTraining, train_reranker


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train-reranker", help="fine-tune a cross-encoder or MVP reranker on training qrels"
    )
    parser.add_argument("dataset", help="BEIR-layout dataset directory")
    parser.add_argument(
        "--collection",
        required=True,
        help="a collection of the dataset's corpus, to mine hard negatives from",
    )
    parser.add_argument("--out", required=True, help="folder for the trained model")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    parser.add_argument(
        "--kind",
        choices=RERANKER_KINDS,
        default="cross-encoder",
        help="cross-encoder (query and passage read together) or mvp (multi-view listwise: "
        "each passage read alone, all scored in one decoding step); default: %(default)s",
    )
    defaults, mvp = RerankerTraining(), MultiViewTraining()
    parser.add_argument(
        "--base",
        default=defaults.base,
        help="starting model: a registry name, folder or hub name; for mvp also llm:NAME (a "
        "decoder LLM read bidirectionally) or an MVP folder (default: %(default)s)",
    )
    parser.add_argument(
        "--epochs", type=positive_int, help=f"default {defaults.epochs} (mvp {mvp.epochs})"
    )
    parser.add_argument(
        "--batch", type=positive_int, default=defaults.batch, help="queries per step"
    )
    parser.add_argument(
        "--lr", type=float, help=f"default {defaults.learning_rate} (mvp: the backbone's)"
    )
    parser.add_argument("--max-length", type=positive_int, default=defaults.max_length)
    parser.add_argument(
        "--negatives",
        type=positive_int,
        help=f"hard negatives per query and epoch (default {defaults.negatives}, mvp "
        f"{mvp.negatives})",
    )
    parser.add_argument(
        "--views", type=positive_int, help=f"mvp: view tokens per passage (default {mvp.views})"
    )
    parser.add_argument(
        "--orthogonality",
        type=float,
        help=f"mvp: weight of the loss that keeps views distinct (default {mvp.orthogonality})",
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
    shared = {
        "base": args.base,
        "batch": args.batch,
        "max_length": args.max_length,
        "mining": MiningConfig.window(depth=args.depth, skip=args.skip, margin=None),
        "dev_share": args.dev_share,
        "seed": args.seed,
    }
    given = {"epochs": args.epochs, "learning_rate": args.lr, "negatives": args.negatives}
    mvp_only = {"views": args.views, "orthogonality": args.orthogonality}
    if args.kind == "mvp":
        chosen = {k: v for k, v in (given | mvp_only).items() if v is not None}
        settings: RerankerTraining | MultiViewTraining = MultiViewTraining(**shared, **chosen)
    else:
        for name, value in mvp_only.items():
            if value is not None:
                raise InputError(f"--{name} applies to --kind mvp only")
        chosen = {k: v for k, v in given.items() if v is not None}
        settings = RerankerTraining(**shared, **chosen)
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
