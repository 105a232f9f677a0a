"""`densekit make-queries`: fine-grained keyword and span test sets from a corpus, and the
LIMIT-style set built from nothing."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json
from densekit.errors import InputError
from densekit.evaluate.limits.dataset import LimitSpec, write_limit_dataset
from densekit.evaluate.query_sets import TASKS, QuerySetSpec, make_queries


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-queries",
        help="build a keyword or span (part-of-passage) test set from a corpus, or a "
        "LIMIT-style set",
        description="Build a BEIR test set whose queries come from the corpus itself: the "
        "salient terms of a passage (keyword) or a run of its words (span); or, with --task "
        "limit and no corpus, the LIMIT paper's people-who-like-things set, whose relevant "
        "pairs are every pair of --docs people (as many top-k sets as possible).",
    )
    parser.add_argument(
        "corpus", nargs="?", help="corpus file (BEIR corpus.jsonl or any densekit corpus)"
    )
    parser.add_argument("--task", choices=[*TASKS, "limit"], required=True)
    parser.add_argument("--out", required=True, help="the BEIR folder to write")
    parser.add_argument(
        "--n",
        "--queries",
        dest="n",
        type=positive_int,
        help="queries (default: 500; limit: 1000)",
    )
    parser.add_argument(
        "--span-tokens", type=positive_int, default=16, help="words per span (default: 16)"
    )
    parser.add_argument(
        "--keywords", type=positive_int, default=4, help="terms per keyword query (default: 4)"
    )
    limit = LimitSpec()
    parser.add_argument(
        "--docs",
        type=positive_int,
        default=limit.docs,
        help="limit: people in the corpus (default: %(default)s, the small set; 50000 the large)",
    )
    parser.add_argument(
        "--relevant",
        type=positive_int,
        default=limit.k,
        help="limit: people relevant to each query (default: %(default)s)",
    )
    parser.add_argument(
        "--likes",
        type=positive_int,
        default=limit.likes,
        help="limit: things each person likes (default: %(default)s)",
    )
    parser.add_argument(
        "--split",
        default="test",
        help="limit: the qrels split to write (default: %(default)s; train for a training set, "
        "with another --seed than the evaluation set's)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.task == "limit":
        return _limit(args)
    if args.corpus is None:
        raise InputError(f"--task {args.task} builds queries from a corpus: give its file")
    spec = QuerySetSpec(
        task=args.task,
        n=args.n or 500,
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


def _limit(args: argparse.Namespace) -> int:
    if args.corpus is not None:
        raise InputError("--task limit builds its own corpus; give no corpus file")
    spec = LimitSpec(
        docs=args.docs, queries=args.n or 1000, k=args.relevant, likes=args.likes, seed=args.seed
    )
    card = write_limit_dataset(spec, args.out, overwrite=args.overwrite, split=args.split)
    if args.json:
        print_json(card)
    else:
        print(
            f"{card['out']}: {spec.queries} queries over {spec.docs} people (every set of "
            f"{spec.k} of the first {card['judged_documents']} relevant to one query); evaluate "
            f"with `densekit eval {card['out']} --collection DIR`"
        )
    return 0
