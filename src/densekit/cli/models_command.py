"""`densekit models`: the named models and whether their weights are here offline."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json
from densekit.encode import DEFAULT_MODEL, REGISTRY


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("models", help="list the named models")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    rows = [
        {
            "name": entry.name,
            "dimension": entry.dimension,
            "offline": entry.available_offline,
            "default": entry.name == DEFAULT_MODEL,
            "description": entry.description,
        }
        for entry in REGISTRY.values()
    ]
    if args.json:
        print_json(rows)
        return 0
    print(f"{'name':<12} {'dim':>5}  {'where':<8} description")
    for row in rows:
        where = "offline" if row["offline"] else "hub"
        mark = " (default)" if row["default"] else ""
        print(f"{row['name']:<12} {row['dimension']:>5}  {where:<8} {row['description']}{mark}")
    print("\nAny sentence-transformers model path or hub name works too.")
    return 0
