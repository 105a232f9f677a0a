"""`densekit index`: build a collection from a corpus file or folder."""

from __future__ import annotations

import argparse

from densekit.cli.arguments import add_fusion_arguments, fusion_from, positive_int
from densekit.cli.output import warn
from densekit.corpus import ChunkConfig, FieldNames
from densekit.encode import DEFAULT_MODEL
from densekit.encode.batching import DEFAULT_BATCH_TOKENS
from densekit.errors import InputError
from densekit.retrieve import DEFAULT_FUSION, RETRIEVER_NAMES
from densekit.store import BuildOptions, build_collection


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("index", help="build a collection from a corpus")
    parser.add_argument(
        "corpus",
        help="BEIR corpus.jsonl, any .jsonl/.csv/.tsv/.parquet (.gz ok), or a folder of .txt/.md",
    )
    parser.add_argument("--out", required=True, help="collection directory to create")
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="registry name, local path or hub name (default: %(default)s)",
    )
    parser.add_argument(
        "--retriever",
        choices=RETRIEVER_NAMES,
        default="hybrid",
        help="what to build (default: %(default)s: dense vectors and BM25)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing collection at --out"
    )
    parser.add_argument(
        "--format", default="auto", choices=["auto", "jsonl", "csv", "tsv", "parquet", "folder"]
    )
    parser.add_argument(
        "--id-field", help="record field holding the document id (default: _id, id, docid)"
    )
    parser.add_argument(
        "--text-field", help="record field holding the text (default: text, contents, body)"
    )
    parser.add_argument("--title-field", help="record field holding the title (default: title)")
    parser.add_argument(
        "--empty",
        choices=["skip", "error"],
        default="skip",
        help="what to do with empty documents (default: %(default)s)",
    )
    parser.add_argument(
        "--chunk-tokens", type=positive_int, help="split documents into windows of this many tokens"
    )
    parser.add_argument(
        "--chunk-overlap",
        type=int,
        help="tokens shared by consecutive windows (default: a quarter of the window, at most 32)",
    )
    parser.add_argument(
        "--batch-tokens",
        type=positive_int,
        default=DEFAULT_BATCH_TOKENS,
        help="tokens per encoding batch, padding included (default: %(default)s)",
    )
    add_fusion_arguments(
        parser,
        f"saved as the collection default; default {DEFAULT_FUSION.method}, "
        f"alpha {DEFAULT_FUSION.alpha}",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    chunk = None
    if args.chunk_tokens is not None:
        overlap = args.chunk_overlap
        if overlap is None:
            overlap = min(32, args.chunk_tokens // 4)
        chunk = ChunkConfig(args.chunk_tokens, overlap)
    elif args.chunk_overlap is not None:
        raise InputError("--chunk-overlap needs --chunk-tokens")
    options = BuildOptions(
        model=args.model,
        retriever=args.retriever,
        chunk=chunk,
        corpus_format=args.format,
        fields=FieldNames(args.id_field, args.text_field, args.title_field),
        on_empty=args.empty,
        batch_tokens=args.batch_tokens,
        fusion=fusion_from(args, DEFAULT_FUSION),
        progress=not args.quiet,
    )
    collection = build_collection(args.corpus, args.out, options, overwrite=args.overwrite)
    stats = collection.manifest.stats
    if stats.get("skipped_empty"):
        examples = ", ".join(stats.get("skipped_empty_ids", []))
        warn(
            f"skipped {stats['skipped_empty']} empty documents (e.g. {examples}); "
            "--empty error refuses them"
        )
    rate = stats.get("encode_docs_per_second")
    speed = f", encoded at {rate:.1f} docs/s" if rate else ""
    print(
        f"built {args.out}: {collection.manifest.documents} documents, "
        f"retrievers {', '.join(collection.retrievers)}{speed}"
    )
    return 0
