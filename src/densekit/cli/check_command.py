"""`densekit check`: read every byte of a collection, compare with its recorded checksums, and
(with --repair) remove what its manifest no longer names."""

from __future__ import annotations

import argparse
import dataclasses

from densekit.cli.output import print_json
from densekit.store.integrity import IntegrityReport
from densekit.store.sharded_integrity import repair_store, verify_store

# 0: whole; 1: damaged files found (the check itself worked); 2: not a collection, or an error.
DAMAGED = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="verify a collection's files against their checksums; --repair removes leftovers",
        description=(
            "Read every file of a collection and compare it with the checksum recorded when it "
            "was written, then open it. Exits 0 when it is whole, 1 when files are damaged "
            "(each named, with what to do), 2 when it is not a readable collection."
        ),
    )
    parser.add_argument("collection", help="collection directory")
    parser.add_argument(
        "--repair",
        action="store_true",
        help="remove leftovers (generations and files the manifest no longer names, left by "
        "killed or replaced writes); refused while a write is in progress",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    removed = repair_store(args.collection) if args.repair else []
    report = verify_store(args.collection, open_check=True)
    report = dataclasses.replace(report, removed=removed)
    show(report, as_json=args.json)
    return 0 if report.ok else DAMAGED


def show(report: IntegrityReport, *, as_json: bool) -> None:
    if as_json:
        print_json(report.to_dict())
    else:
        print("\n".join(report.lines()))
