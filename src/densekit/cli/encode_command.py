"""`densekit encode`: vectors for a corpus, without building a collection."""

from __future__ import annotations

import argparse

from densekit.cli.corpus_arguments import (
    add_corpus_arguments,
    add_encoding_arguments,
    build_options_from,
    report_encoding,
)
from densekit.cli.ray_arguments import add_ray_arguments, remote_encoding
from densekit.store import BuildOptions
from densekit.store.embeddings_dir import encode_corpus


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "encode", help="encode a corpus into resumable vector shards (npy or parquet)"
    )
    add_corpus_arguments(parser)
    parser.add_argument("--out", required=True, help="directory for the vectors")
    parser.add_argument(
        "--output",
        choices=["npy", "parquet"],
        default="npy",
        help="npy shards (always written), plus one vectors.parquet (default: %(default)s)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo finished embeddings at --out"
    )
    add_encoding_arguments(parser)
    add_ray_arguments(parser, workers=True)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = BuildOptions(**build_options_from(args, retriever="dense"))
    encoder = options.load_encoder()
    with remote_encoding(args, options, encoder) as remote:
        manifest = encode_corpus(
            args.corpus,
            args.out,
            options,
            output=args.output,
            overwrite=args.overwrite,
            encoder=encoder,
            remote=remote,
        )
    summary = report_encoding(manifest["skipped_empty"], [], manifest["stats"])
    print(
        f"encoded {args.out}: {manifest['documents']} documents, {manifest['passages']} "
        f"passages in {len(manifest['shards'])} shards{summary}"
    )
    return 0
