"""`densekit soup`: average models fine-tuned from one base (uniform or greedy)."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json
from densekit.train.soup import soup_models


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "soup", help="average the weights of models fine-tuned from one base (model soup)"
    )
    parser.add_argument("models", nargs="+", help="model folders (sentence-transformers)")
    parser.add_argument("--out", required=True, help="folder for the averaged model")
    parser.add_argument(
        "--greedy",
        action="store_true",
        help="add models best-first, each only if the dev score does not drop (needs --dev)",
    )
    parser.add_argument("--dev", help="BEIR-layout dataset to score greedy soups on")
    parser.add_argument("--dev-split", default="dev", help="its qrels split (default: dev)")
    parser.add_argument("--metric", default="nDCG@10", help="dev metric (default: nDCG@10)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model at --out")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    report = soup_models(
        args.models,
        args.out,
        greedy=args.greedy,
        dev=args.dev,
        dev_split=args.dev_split,
        metric=args.metric,
        overwrite=args.overwrite,
    )
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"wrote {report.out}: the mean of {len(report.used)} of {len(report.ingredients)} models")
    for model in report.ingredients:
        alone = f" ({args.metric} {report.scores[model]:.4f})" if model in report.scores else ""
        print(f"  {'used' if model in report.used else 'left out'}: {model}{alone}")
    if report.soup_score is not None:
        print(f"soup {report.metric} on {args.dev_split}: {report.soup_score:.4f}")
    return 0
