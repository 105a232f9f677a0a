"""`densekit tune`: choose a collection's hybrid fusion by cross-validation on judgements."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json, warn
from densekit.evaluate.tuning import FusionTuning, tune_fusion
from densekit.retrieve.fusion import describe_fusion


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tune",
        help="choose a collection's hybrid fusion by cross-validation on judged queries",
        description="Search every judged query of a split with the collection's dense and BM25 "
        "indexes once, score each candidate fusion (convex weights, RRF k, candidate depth) on "
        "them, and store the best as the collection's default search, with its cross-validated "
        "score. Evaluate it on another split afterwards.",
    )
    parser.add_argument("dataset", help="BEIR dataset folder (queries.jsonl, qrels/SPLIT.tsv)")
    parser.add_argument("--collection", required=True, help="the collection to tune")
    parser.add_argument("--split", default="train", help="qrels split (default: %(default)s)")
    parser.add_argument(
        "--metric", default="nDCG@10", help="ir_measures name to maximise (default: %(default)s)"
    )
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    parser.add_argument("--seed", type=int, default=0, help="shuffles the folds (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    tuning = tune_fusion(
        args.dataset,
        args.collection,
        split=args.split,
        metric=args.metric,
        folds=args.folds,
        seed=args.seed,
        progress=not (args.quiet or args.json),
    )
    for message in tuning.warnings:
        warn(message)
    if args.json:
        print_json(tuning.to_dict())
        return 0
    for line in summary(tuning, args.collection):
        print(line)
    return 0


def summary(tuning: FusionTuning, collection: str) -> list[str]:
    metric = tuning.metric
    parts = ", ".join(f"{name} alone {score:.4f}" for name, score in tuning.parts.items())
    lines = [
        f"{tuning.dataset} ({tuning.split}, {tuning.queries} queries): {tuning.candidates} fusion "
        f"settings compared by {metric}",
        f"chosen:        {describe_fusion(tuning.fusion)}",
        f"{len(tuning.folds)}-fold CV:     {metric} {tuning.cv_mean:.4f} ± {tuning.cv_std:.4f} "
        "(each fold's choice made on the other folds)",
        f"all queries:   {tuning.score:.4f}; the previous default "
        f"({describe_fusion(tuning.previous)}) {tuning.previous_score:.4f}; {parts}",
    ]
    for fold in tuning.folds:
        lines.append(
            f"  fold {fold.fold} ({fold.queries} queries): {describe_fusion(fold.fusion)}, "
            f"held out {fold.held_out_score:.4f}"
        )
    lines.append(
        f"stored as the default search of {collection} (hybrid); densekit search and eval use it"
    )
    return lines
