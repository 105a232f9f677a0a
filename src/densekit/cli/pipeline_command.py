"""`densekit pipeline show FILE`: check a pipeline file and say what it does."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json
from densekit.retrieve.pipeline import Pipeline


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("pipeline", help="check and explain a pipeline file")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="check a pipeline file and explain its stages")
    show.add_argument("file", help="pipeline TOML file")
    show.add_argument("--json", action="store_true", help="print the parsed pipeline as JSON")
    show.set_defaults(handler=run_show)


def run_show(args: argparse.Namespace) -> int:
    pipeline = Pipeline.from_toml(args.file)
    if args.json:
        print_json(pipeline.to_dict())
    else:
        print(pipeline.explain())
    return 0
