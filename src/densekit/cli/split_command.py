"""`densekit split`: a train/test split of a dataset's judged queries without leakage."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json, warn
from densekit.evaluate.splits import SPLIT_BY, load_judged, split_dataset, write_split


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "split",
        help="split a dataset's judged queries into train and test without shared documents",
        description="Write a BEIR folder whose qrels/train.tsv and qrels/test.tsv split the "
        "dataset's judged queries. --by document: no test query shares a relevant document, "
        "or its text, with a training query; --by query: a plain random split, for comparison.",
    )
    parser.add_argument("dataset", help="BEIR dataset folder (queries.jsonl, qrels/*.tsv)")
    parser.add_argument("--by", choices=SPLIT_BY, required=True)
    parser.add_argument("--out", required=True, help="the BEIR folder to write")
    parser.add_argument(
        "--test-share", type=float, default=0.3, help="share of queries for test (default: 0.3)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--from-split",
        help="comma-separated qrels splits whose queries are split (default: every qrels file)",
    )
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    splits = None
    if args.from_split is not None:
        splits = [name.strip() for name in args.from_split.split(",") if name.strip()]
    dataset = load_judged(args.dataset, splits)
    for message in dataset.warnings:
        warn(message)
    split = split_dataset(dataset, args.by, args.test_share, args.seed)
    write_split(split, args.out, overwrite=args.overwrite)
    report = {"out": args.out, **split.report()}
    if args.json:
        print_json(report)
        return 0
    seen = report["test_relevant_seen_in_train"]
    dropped = report["dropped_queries"]
    print(
        f"{args.out}: {report['train_queries']} train and {report['test_queries']} test queries "
        f"(test share {report['test_share_reached']:.3f}) of {report['queries']} judged in "
        f"{', '.join(report['from_splits'])}; {report['components']} groups of queries linked "
        f"by relevant documents or text (largest {report['largest_component']}); "
        + (f"{dropped} dropped (see {args.out}/densekit_split.json)" if dropped else "none dropped")
    )
    print(
        f"test queries with relevant documents seen in training: {seen['all']} all, "
        f"{seen['some']} some, {seen['none']} none; {seen['repeated_text']} repeat a training "
        "query's text"
    )
    return 0
