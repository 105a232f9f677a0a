"""`densekit info`: what a collection holds."""

from __future__ import annotations

import argparse

from densekit.cli.check_command import DAMAGED, show
from densekit.cli.output import print_json
from densekit.retrieve import FusionConfig
from densekit.retrieve.fusion import describe_fusion
from densekit.store.collection_info import collection_info
from densekit.store.integrity import IntegrityReport
from densekit.store.sharded import open_store
from densekit.store.sharded_integrity import verify_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("info", help="describe a collection")
    parser.add_argument("collection", help="collection directory")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also read every file and compare it with its recorded checksum (densekit check)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    integrity = None
    if args.verify:
        # Verified before opening: a damaged file is named even where opening would fail.
        integrity = verify_store(args.collection)
        if not integrity.ok:
            show(integrity, as_json=args.json)
            return DAMAGED
    info = collection_info(open_store(args.collection))
    if args.json:
        print_json(info if integrity is None else {**info, "integrity": integrity.to_dict()})
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
        *_multivector(info.get("multivector")),
        ("chunking", info["chunking"] or "none"),
        ("bm25", _bm25(info["bm25"])),
        ("fusion", describe_fusion(FusionConfig.stored(info["fusion"]))),
        *_tuning(info["fusion_tuning"]),
        ("size", f"{info['size_bytes'] / 1e6:.1f} MB"),
        ("created", info["created"]),
        ("source", info["source"]),
        *_shards(info.get("shards")),
    ]
    if integrity is not None:
        lines.append(("integrity", _integrity(integrity)))
    for key, value in lines:
        print(f"{key:<11} {value}")
    return 0


def _integrity(report: IntegrityReport) -> str:
    if not report.verified:
        return f"no checksums recorded ({report.files} files, written by an older densekit)"
    said = f"{report.verified} of {report.files} files verified against their checksums"
    if report.unrecorded:
        said += f" ({len(report.unrecorded)} have none recorded)"
    if report.leftovers:
        said += f"; {len(report.leftovers)} leftovers (densekit check --repair removes them)"
    return said


def _shards(shards: list[dict] | None) -> list[tuple[str, str]]:
    if shards is None:
        return []
    sizes = ", ".join(str(shard["documents"]) for shard in shards)
    return [("shards", f"{len(shards)} by document id hash, documents {sizes}")]


def _bm25(bm25: dict | None) -> str:
    if bm25 is None:
        return "none"
    language = f"language {bm25['language']}, " if bm25.get("language") else ""
    return (
        f"k1 {bm25['k1']:g}, b {bm25['b']:g}, {language}stemmer {bm25['stemmer']}, "
        f"stop words {bm25.get('stopwords', 'en')}; {bm25['terms']}"
    )


def _multivector(part: dict | None) -> list[tuple[str, str]]:
    if part is None:
        return []
    return [
        (
            "multivector",
            f"{part['model']} ({part['dimension']}-d, {part['fingerprint'][:12]}): "
            f"{part['token_vectors']} token vectors, token index {part['token_index']}",
        )
    ]


def _adapter(adapter: dict | None) -> str:
    if adapter is None:
        return "none"
    spec = ", ".join(f"{k} {v}" for k, v in (adapter["spec"] or {}).items())
    trained = adapter.get("trained") or {}
    where = f"; trained on {trained.get('dataset')} ({trained.get('split')})" if trained else ""
    return f"{adapter['kind']} ({spec}){where}"


def _tuning(tuning: dict | None) -> list[tuple[str, str]]:
    """When `densekit tune` chose the fusion: from what data, and how well it did."""
    if tuning is None:
        return []
    return [
        (
            "tuned",
            f"on {tuning['dataset']} ({tuning['split']}, {tuning['queries']} queries, "
            f"{tuning['dataset_path']}), {tuning['created']}",
        ),
        (
            "tuned score",
            f"{tuning['metric']} {tuning['cv_mean']:.4f} ± {tuning['cv_std']:.4f} in "
            f"{tuning['folds']}-fold CV; {tuning['score']:.4f} on all its queries, where the "
            f"fusion before scored {tuning['previous_score']:.4f}",
        ),
    ]
