"""`densekit info`: what a collection holds."""

from __future__ import annotations

import argparse

from densekit.cli.output import print_json
from densekit.store import Collection


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe a collection")
    parser.add_argument("collection", help="collection directory")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    info = Collection(args.collection).info()
    if args.json:
        print_json(info)
        return 0
    model = info["model"]
    lines = [
        ("directory", info["directory"]),
        (
            "documents",
            f"{info['documents']} (+{info['deleted']} deleted, kept until densekit compact)"
            if info["deleted"]
            else info["documents"],
        ),
        ("passages", info["passages"]),
        ("retrievers", ", ".join(info["retrievers"]) + f" (default {info['default_retriever']})"),
        (
            "model",
            f"{model['name']} ({model['dimension']}-d, {model['fingerprint'][:12]})"
            if model
            else "none",
        ),
        ("index", info["index"]),
        ("adapter", _adapter(info["adapter"])),
        ("chunking", info["chunking"] or "none"),
        ("bm25", info["bm25"] or "none"),
        ("fusion", info["fusion"]),
        ("size", f"{info['size_bytes'] / 1e6:.1f} MB"),
        ("created", info["created"]),
        ("source", info["source"]),
    ]
    for key, value in lines:
        print(f"{key:<11} {value}")
    return 0


def _adapter(adapter: dict | None) -> str:
    if adapter is None:
        return "none"
    spec = ", ".join(f"{k} {v}" for k, v in (adapter["spec"] or {}).items())
    trained = adapter.get("trained") or {}
    where = f"; trained on {trained.get('dataset')} ({trained.get('split')})" if trained else ""
    return f"{adapter['kind']} ({spec}){where}"
