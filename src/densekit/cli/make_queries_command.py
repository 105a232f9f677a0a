"""`densekit make-queries`: fine-grained keyword and span test sets from a corpus."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json
from densekit.evaluate.query_sets import TASKS, QuerySetSpec, make_queries


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-queries",
        help="build a keyword or span (part-of-passage) test set from a corpus",
        description="Build a BEIR test set whose queries come from the corpus itself: the "
        "salient terms of a passage (keyword) or a run of its words (span).",
    )
    parser.add_argument("corpus", help="corpus file (BEIR corpus.jsonl or any densekit corpus)")
    parser.add_argument("--task", choices=TASKS, required=True)
    parser.add_argument("--out", required=True, help="the BEIR folder to write")
    parser.add_argument("--n", type=positive_int, default=500, help="queries (default: 500)")
    parser.add_argument(
        "--span-tokens", type=positive_int, default=16, help="words per span (default: 16)"
    )
    parser.add_argument(
        "--keywords", type=positive_int, default=4, help="terms per keyword query (default: 4)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = QuerySetSpec(
        task=args.task,
        n=args.n,
        span_tokens=args.span_tokens,
        keywords=args.keywords,
        seed=args.seed,
    )
    report = make_queries(args.corpus, args.out, spec, overwrite=args.overwrite)
    if args.json:
        print_json(report.__dict__)
    else:
        print(
            f"{report.out}: {report.queries} {args.task} queries from {report.eligible_documents} "
            f"eligible of {report.documents} documents; evaluate with "
            f"`densekit eval {report.out} --collection DIR`"
        )
    return 0
