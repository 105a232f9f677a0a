"""The corpus and encoding flags that `densekit index` and `densekit encode` share."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from densekit.cli.arguments import positive_int
from densekit.cli.output import warn
from densekit.corpus import ChunkConfig, FieldNames
from densekit.encode import BACKENDS, DEFAULT_MODEL
from densekit.encode.batching import DEFAULT_BATCH_TOKENS
from densekit.encode.cache import default_cache_dir
from densekit.errors import InputError
from densekit.files.shards import DEFAULT_ROWS_PER_SHARD, STORAGE_DTYPES

CORPUS_HELP = "BEIR corpus.jsonl, any .jsonl/.csv/.tsv/.parquet (.gz ok), or a folder of .txt/.md"


def add_corpus_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("corpus", help=CORPUS_HELP)
    parser.add_argument(
        "--format", default="auto", choices=["auto", "jsonl", "csv", "tsv", "parquet", "folder"]
    )
    parser.add_argument(
        "--id-field", help="field holding the document id (default: _id, id, docid)"
    )
    parser.add_argument(
        "--text-field", help="field holding the text (default: text, contents, body)"
    )
    parser.add_argument("--title-field", help="field holding the title (default: title)")
    parser.add_argument(
        "--empty",
        choices=["skip", "error"],
        default="skip",
        help="what to do with empty documents (default: %(default)s)",
    )


def add_encoding_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help="registry name, local path, hub name, or openai:MODEL@BASE_URL for a model behind "
        "an OpenAI-compatible embeddings endpoint (default: %(default)s)",
    )
    parser.add_argument(
        "--backend",
        choices=BACKENDS,
        help="runtime for the model (default: the model's own; torch-int8 is the fastest on CPU)",
    )
    add_cut_arguments(parser)
    parser.add_argument(
        "--chunk-tokens", type=positive_int, help="split documents into windows of this many tokens"
    )
    parser.add_argument(
        "--chunk-overlap",
        type=int,
        help="tokens shared by consecutive windows (default: a quarter window, at most 32)",
    )
    parser.add_argument(
        "--batch-tokens",
        type=positive_int,
        default=DEFAULT_BATCH_TOKENS,
        help="tokens per encoding batch, padding included (default: %(default)s)",
    )
    parser.add_argument(
        "--shard-rows",
        type=positive_int,
        default=DEFAULT_ROWS_PER_SHARD,
        help="vectors per shard, the unit of resuming (default: %(default)s)",
    )
    parser.add_argument(
        "--storage",
        choices=STORAGE_DTYPES,
        default="float32",
        help="how vectors are stored (default: %(default)s)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        help=f"embedding cache (default: $DENSEKIT_CACHE_DIR or {default_cache_dir()})",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor fill the cache")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def add_cut_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """--layers and --dim: encode with part of a (2D) Matryoshka model."""
    parser.add_argument(
        "--layers",
        type=positive_int,
        help="encode with the model's first LAYERS transformer layers (2D Matryoshka models)",
    )
    parser.add_argument(
        "--dim", type=positive_int, help="keep the first DIM dimensions of each vector (Matryoshka)"
    )


def build_options_from(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for :class:`densekit.store.BuildOptions` from the shared flags."""
    chunk = None
    if args.chunk_tokens is not None:
        overlap = args.chunk_overlap
        if overlap is None:
            overlap = min(32, args.chunk_tokens // 4)
        chunk = ChunkConfig(args.chunk_tokens, overlap)
    elif args.chunk_overlap is not None:
        raise InputError("--chunk-overlap needs --chunk-tokens")
    if args.no_cache and args.cache_dir is not None:
        raise InputError("--no-cache and --cache-dir contradict each other; pick one")
    return {
        "model": args.model,
        "backend": args.backend,
        "layers": args.layers,
        "dim": args.dim,
        "chunk": chunk,
        "corpus_format": args.format,
        "fields": FieldNames(args.id_field, args.text_field, args.title_field),
        "on_empty": args.empty,
        "batch_tokens": args.batch_tokens,
        "rows_per_shard": args.shard_rows,
        "dtype": args.storage,
        "cache_dir": None if args.no_cache else (args.cache_dir or default_cache_dir()),
        "progress": not args.quiet,
        **extra,
    }


def report_encoding(skipped_empty: int, skipped_ids: list[str], encoding: dict | None) -> str:
    """Warn about what was skipped or truncated; return a summary of the encoding work."""
    if skipped_empty:
        warn(
            f"skipped {skipped_empty} empty documents (e.g. {', '.join(skipped_ids)}); "
            "--empty error refuses them"
        )
    if not encoding:
        return ""
    if encoding.get("truncated_passages"):
        warn(
            f"{encoding['truncated_passages']} passages were longer than the model reads and "
            "were truncated; --chunk-tokens splits them instead"
        )
    parts = [f"{encoding['encoded_passages']} encoded"]
    if encoding.get("cached_passages"):
        parts.append(f"{encoding['cached_passages']} from the cache")
    if encoding.get("resumed_passages"):
        parts.append(f"{encoding['resumed_passages']} resumed from an earlier run")
    return f"; passages: {', '.join(parts)} in {encoding['seconds']:.1f} s"
