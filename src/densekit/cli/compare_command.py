"""`densekit compare`: several runs or collections on one dataset, with paired significance
tests against a baseline and an optional report."""

from __future__ import annotations

import argparse
from pathlib import Path

from densekit.cli.hit_fields import add_filter_argument, filter_from
from densekit.cli.output import print_json, warn
from densekit.errors import InputError
from densekit.evaluate import evaluate, evaluate_run
from densekit.evaluate.beir import BeirDataset, load_beir
from densekit.evaluate.comparison import compare_reports, cutoff_curves
from densekit.evaluate.comparison_report import check_report_path, text_table, write_report
from densekit.evaluate.evaluation import EvalReport
from densekit.evaluate.metrics import DEFAULT_METRICS
from densekit.evaluate.significance import CORRECTIONS, Correction
from densekit.retrieve import RETRIEVER_NAMES


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="compare runs or collections on a dataset, with significance tests"
    )
    parser.add_argument(
        "systems",
        nargs="+",
        metavar="[NAME=]RUN_OR_COLLECTION",
        help="a TREC run file or a collection directory, optionally named (bm25=runs/bm25.trec)",
    )
    parser.add_argument("--dataset", required=True, help="the BEIR dataset whose qrels judge")
    parser.add_argument("--split", default="test", help="qrels split (default: %(default)s)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS), help="as for eval")
    parser.add_argument("--baseline", help="the system the others are tested against (first)")
    parser.add_argument(
        "--correction",
        choices=CORRECTIONS,
        default="holm",
        help="for the number of tests (default: %(default)s)",
    )
    parser.add_argument(
        "--retriever", choices=RETRIEVER_NAMES, help="for collections (default: each one's)"
    )
    add_filter_argument(parser)
    parser.add_argument("--report", metavar="FILE", help="also write a report: .html or .md")
    parser.add_argument("--per-query", action="store_true", help="per-query values in --json")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def named_systems(given: list[str]) -> dict[str, Path]:
    """``[NAME=]PATH`` arguments by name (default: the file's stem or the folder's name)."""
    systems: dict[str, Path] = {}
    for argument in given:
        name, equals, path = argument.partition("=")
        if not equals or not name or Path(argument).exists():
            name, path = "", argument
        location = Path(path)
        if not location.exists():
            raise InputError(f"{path}: no such run file or collection directory")
        name = name or (location.stem if location.is_file() else location.name)
        if name in systems:
            raise InputError(f"two systems would be named {name!r}; name them (NAME={path})")
        systems[name] = location
    return systems


def evaluate_systems(
    args: argparse.Namespace, systems: dict[str, Path]
) -> tuple[BeirDataset, dict[str, EvalReport]]:
    """The dataset, and each system scored on it (a collection searched, a run file read)."""
    data = load_beir(args.dataset, args.split)
    reports = {}
    for name, location in systems.items():
        if location.is_dir():
            reports[name] = evaluate(
                data,
                collection=location,
                retriever=args.retriever,
                metrics=args.metrics,
                where=filter_from(args),
            )
        else:
            if args.filter is not None:
                warn(f"{name}: a run file is scored as it is; --filter applies to collections")
            reports[name] = evaluate_run(data, location, metrics=args.metrics)
        for message in reports[name].warnings:
            warn(f"{name}: {message}")
    return data, reports


def run(args: argparse.Namespace) -> int:
    systems = named_systems(args.systems)
    if len(systems) < 2:
        raise InputError("compare needs two systems or more (runs or collections)")
    if args.report:
        check_report_path(args.report)
    data, reports = evaluate_systems(args, systems)
    return show_comparison(
        args, reports, data, baseline=args.baseline, correction=args.correction, report=args.report
    )


def show_comparison(
    args: argparse.Namespace,
    reports: dict[str, EvalReport],
    data: BeirDataset,
    *,
    baseline: str | None,
    correction: Correction,
    report: str | None,
) -> int:
    """Compare ``reports``, print the comparison (``--json``: as JSON) and write ``report``."""
    comparison = compare_reports(reports, baseline=baseline, correction=correction)
    cutoff_curves(comparison, reports, data.qrels)
    if report:
        write_report(comparison, report)
    if args.json:
        print_json(comparison.to_dict(per_query=args.per_query))
        return 0
    queries = reports[comparison.baseline].queries
    print(f"{comparison.dataset} ({comparison.split}), {queries} queries")
    print(text_table(comparison))
    if report:
        print(f"\nreport: {report}")
    return 0
