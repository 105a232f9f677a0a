"""`densekit eval`: evaluate a collection or a model on a BEIR dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from densekit.cli.arguments import (
    add_fusion_arguments,
    add_index_search_arguments,
    add_pipeline_argument,
    fusion_from,
    index_params_from,
    pipeline_from,
)
from densekit.cli.compare_command import named_systems
from densekit.cli.corpus_arguments import add_cut_arguments
from densekit.cli.hit_fields import add_filter_argument, filter_from
from densekit.cli.output import print_json, warn
from densekit.encode import DEFAULT_MODEL
from densekit.errors import InputError
from densekit.evaluate import evaluate, evaluate_run
from densekit.evaluate.evaluation import EvalReport
from densekit.evaluate.metrics import DEFAULT_METRICS
from densekit.retrieve import RETRIEVER_NAMES
from densekit.store import BuildOptions


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("eval", help="evaluate on a BEIR-layout dataset")
    parser.add_argument("dataset", help="dataset directory (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--split", default="test", help="qrels split (default: %(default)s)")
    parser.add_argument(
        "--collection", help="evaluate this collection (built from the dataset's corpus)"
    )
    parser.add_argument("--model", help="model to build with, or to check against --collection")
    add_cut_arguments(
        parser.add_argument_group("part of a 2D Matryoshka model (a fresh build, no --collection)")
    )
    parser.add_argument("--retriever", choices=RETRIEVER_NAMES, help="default: hybrid")
    parser.add_argument(
        "--query-vectors",
        metavar="FILE",
        help="search with these query vectors (.parquet with id and vector columns, or a "
        "densekit encode folder; made by the collection's model) instead of encoding",
    )
    parser.add_argument(
        "--metrics",
        default=",".join(DEFAULT_METRICS),
        help="ir_measures names (default: %(default)s)",
    )
    parser.add_argument("--run", help="score this TREC run file instead of searching")
    parser.add_argument("--run-out", help="write the run in TREC format to this file")
    parser.add_argument("--per-query", action="store_true", help="also show each query's values")
    add_fusion_arguments(parser, "default: the collection's")
    add_pipeline_argument(parser)
    add_index_search_arguments(parser)
    add_filter_argument(parser)
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="RUN_OR_COLLECTION",
        help="also score these (run files or collections, [NAME=]PATH) and test each against "
        "this evaluation, as densekit compare does with it first",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Systems to compare with are checked before this evaluation's work.
    others = named_systems(args.compare) if args.compare else None
    if args.run:
        extra = [flag for flag, value in _search_flags(args).items() if value]
        if extra:
            raise InputError(f"--run scores a finished run; drop {', '.join(extra)}")
        report = evaluate_run(args.dataset, args.run, metrics=args.metrics, split=args.split)
    else:
        report = evaluate(
            args.dataset,
            collection=args.collection,
            model=args.model,
            retriever=args.retriever,
            metrics=args.metrics,
            split=args.split,
            fusion=fusion_from(args),
            run_out=args.run_out,
            build_options=_cut_build(args),
            index_params=index_params_from(args),
            pipeline=pipeline_from(args),
            query_vectors=args.query_vectors,
            where=filter_from(args),
        )
    for message in report.warnings:
        warn(message)
    if others is not None:
        return compare_with(args, report, others)
    if args.json:
        print_json(report.to_dict(per_query=args.per_query))
        return 0
    model = f", model {report.model}" if report.model else ""
    print(f"{report.dataset} ({report.split}, {report.queries} queries), {report.retriever}{model}")
    for name, value in report.metrics.items():
        print(f"  {name:<10} {value:.4f}")
    for stage in report.stages:
        rate = f", {stage['passages_per_second']} passages/s" if stage["passages"] else ""
        print(f"  stage {stage['stage']}: {stage['ms_per_query']} ms/query{rate}")
    if args.per_query:
        names = list(report.metrics)
        print("\n" + " ".join(f"{n:>10}" for n in ["query", *names]))
        for query_id, values in report.per_query.items():
            print(" ".join([f"{query_id:>10}", *(f"{values[n]:>10.4f}" for n in names)]))
    return 0


def compare_with(args: argparse.Namespace, report: EvalReport, others: dict[str, Path]) -> int:
    """``densekit compare`` with this evaluation first, as the baseline."""
    from densekit.cli.compare_command import evaluate_systems, show_comparison

    name = "eval" if report.retriever == "run" else report.retriever
    if name in others:
        raise InputError(f"--compare names a system {name!r}, as this evaluation is called")
    data, reports = evaluate_systems(args, others)
    return show_comparison(
        args, {name: report, **reports}, data, baseline=name, correction="holm", report=None
    )


def _cut_build(args: argparse.Namespace) -> BuildOptions | None:
    """How to build the dataset's corpus with part of the model (--layers, --dim); None: as
    evaluate() builds by default."""
    if args.layers is None and args.dim is None:
        return None
    if args.collection:
        raise InputError(
            "--layers and --dim cut the model of the collection eval builds; --collection was "
            "built with its own (densekit info shows them): drop them, or drop --collection"
        )
    if args.pipeline:
        raise InputError(
            "--layers and --dim do not combine with --pipeline here: build the collection with "
            "densekit index --layers/--dim, then evaluate it with --collection"
        )
    return BuildOptions(
        model=args.model or DEFAULT_MODEL,
        retriever=args.retriever or "hybrid",
        layers=args.layers,
        dim=args.dim,
    )


def _search_flags(args: argparse.Namespace) -> dict[str, object]:
    return {
        "--collection": args.collection,
        "--model": args.model,
        "--layers": args.layers,
        "--dim": args.dim,
        "--retriever": args.retriever,
        "--run-out": args.run_out,
        "--fusion": args.fusion,
        "--alpha": args.alpha,
        "--normalization": args.normalization,
        "--ef-search": args.ef_search,
        "--nprobe": args.nprobe,
        "--rescore": args.rescore,
        "--pipeline": args.pipeline,
        "--query-vectors": args.query_vectors,
        "--filter": args.filter,
    }
