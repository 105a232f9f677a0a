"""`densekit limits`: the experiments of the LIMIT paper on the limits of single vectors."""

from __future__ import annotations

import argparse
import dataclasses

from densekit.cli.output import print_json, warn
from densekit.errors import InputError
from densekit.evaluate.limits import FitResult, FitSettings, run_experiment
from densekit.evaluate.limits.experiment import PLOT_FILE, RESULTS_FILE, resolve_device
from densekit.evaluate.limits.sign_rank import dimension_bounds, read_relevance


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "limits",
        help="how many top-k sets can d-dimensional vectors represent? (the LIMIT experiments)",
        description="Experiments on the limits of single-vector retrieval (Weller et al., On the "
        "Theoretical Limitations of Embedding-Based Retrieval).",
    )
    experiments = parser.add_subparsers(dest="experiment", required=True, metavar="EXPERIMENT")
    free = experiments.add_parser(
        "free-embedding",
        help="the critical n of each dimension: the most documents whose every top-k set "
        "free vectors reproduce",
        description="For each dimension d, optimise free query and document vectors (no "
        "language model) to reproduce all C(n, k) top-k sets of n documents (Adam, full-batch "
        "softmax over every document, the paper's protocol) and search for the largest n that "
        "reaches 100%%. Writes free_embedding.json (every run, resumable) and a plot to --out.",
    )
    free.add_argument("--k", type=int, default=2, help="relevant documents per query (default 2)")
    free.add_argument(
        "--dims", required=True, help="comma-separated dimensions, e.g. 4,8,12,16,20,24,28,32"
    )
    free.add_argument("--out", required=True, help="folder for the results (a rerun resumes)")
    free.add_argument(
        "--device", default="auto", help="auto (a GPU when torch sees one), cpu, cuda, cuda:N"
    )
    defaults = FitSettings()
    free.add_argument(
        "--max-steps",
        type=int,
        default=defaults.max_steps,
        help="optimisation steps per run at most (default: %(default)s, the paper's)",
    )
    free.add_argument("--seed", type=int, default=defaults.seed)
    free.add_argument("--no-progress", action="store_true")
    free.add_argument("--json", action="store_true", help="print the record as JSON")
    free.set_defaults(handler=run_free_embedding)
    bounds = experiments.add_parser(
        "sign-rank",
        help="bounds on the dimension single vectors need to represent a qrels file",
        description="Can any d-dimensional embedding return every query's relevant documents "
        "as its top k (k its own count)? A lower bound (Forster's sign-rank bound, minus one) "
        "and an upper bound: the smallest d at which free vectors, optimised as in "
        "free-embedding, reproduce every query's top k exactly.",
    )
    bounds.add_argument("qrels", help="a BEIR qrels file (query-id, corpus-id, score; tabs)")
    bounds.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    bounds.add_argument(
        "--max-steps",
        type=int,
        default=defaults.max_steps,
        help="optimisation steps per dimension tried (default: %(default)s)",
    )
    bounds.add_argument("--seed", type=int, default=defaults.seed)
    bounds.add_argument("--json", action="store_true", help="print the bounds as JSON")
    bounds.set_defaults(handler=run_sign_rank)


def _dims(text: str) -> list[int]:
    try:
        dims = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InputError(f"--dims {text!r}: give comma-separated whole numbers") from None
    if not dims:
        raise InputError("--dims: give at least one dimension")
    return dims


def _settings(args: argparse.Namespace) -> FitSettings:
    if args.max_steps < 1:
        raise InputError(f"--max-steps {args.max_steps}: give 1 or more")
    return FitSettings(max_steps=args.max_steps, seed=args.seed)


def run_sign_rank(args: argparse.Namespace) -> int:
    relevance = read_relevance(args.qrels)
    counts = relevance.k_counts
    if len(counts) > 1 and not args.json:
        warn(
            f"{args.qrels}: queries have {min(counts)} to {max(counts)} relevant documents; each "
            "query's top k is its own count"
        )

    def show(d: int, result: FitResult) -> None:
        if not args.json:
            outcome = "exact" if result.solved else f"{result.accuracy:.4f} of relevant in top k"
            print(f"  d {d:>5}: {outcome} after {result.steps} steps ({result.seconds:.1f} s)")

    if not args.json:
        print(
            f"{args.qrels}: {len(relevance.queries)} queries, {len(relevance.documents)} "
            "relevant documents"
        )
    found = dimension_bounds(relevance, _settings(args), resolve_device(args.device), show)
    report = {
        "queries": len(relevance.queries),
        "documents": len(relevance.documents),
        "relevant_per_query": counts,
        "lower": found.lower,
        "upper": found.upper,
        "upper_fitted": found.fitted,
        "optimiser_failed_at": found.failed,
        "tried": {d: dataclasses.asdict(result) for d, result in sorted(found.tried.items())},
    }
    if args.json:
        print_json(report)
        return 0
    how = "an exact fit found" if found.fitted else "one-hot documents (no fit found below)"
    print(f"lower bound: {_dimensions(found.lower)} (Forster's sign-rank bound, minus one)")
    print(f"upper bound: {_dimensions(found.upper)} suffice ({how})")
    if found.failed is not None:
        print(f"the optimiser found no exact fit in {_dimensions(found.failed)} (not a proof)")
    return 0


def _dimensions(count: int) -> str:
    return f"{count} dimension" + ("" if count == 1 else "s")


def run_free_embedding(args: argparse.Namespace) -> int:
    settings = _settings(args)
    record = run_experiment(
        _dims(args.dims), args.k, args.out, settings, args.device, progress=not args.no_progress
    )
    if args.json:
        print_json(record)
        return 0
    print(f"{'d':>4} {'critical n':>11} {'paper fit':>10} {'runs':>5}")
    for d, entry in sorted(record["dims"].items(), key=lambda item: int(item[0])):
        critical = entry.get("critical_n")
        print(
            f"{d:>4} {critical if critical is not None else '-':>11} "
            f"{entry.get('paper_fit', '-'):>10} {len(entry['runs']):>5}"
        )
    if record.get("fit"):
        a, b, c, e = record["fit"]
        print(f"cubic fit: n = {a:.4f} + {b:.4f} d + {c:.4f} d^2 + {e:.4f} d^3")
    print(f"wrote {args.out}/{RESULTS_FILE} and {PLOT_FILE}")
    return 0
