"""`densekit index`: build a collection from a corpus file or folder."""

from __future__ import annotations

import argparse
from contextlib import nullcontext

from densekit.cli.arguments import add_fusion_arguments, fusion_from
from densekit.cli.corpus_arguments import (
    add_corpus_arguments,
    add_encoding_arguments,
    build_options_from,
    report_encoding,
)
from densekit.cli.ray_arguments import add_ray_arguments, check_ray_arguments, remote_encoding
from densekit.encode import Encoder
from densekit.errors import InputError
from densekit.index.languages import LANGUAGES, language_settings
from densekit.index.lexical import HYBRID_TERMS
from densekit.retrieve import DEFAULT_FUSION, RETRIEVER_NAMES
from densekit.store import BuildOptions, build_collection
from densekit.store.encoding_run import PartitionEncoder
from densekit.store.sharded_build import build_sharded


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("index", help="build a collection from a corpus")
    add_corpus_arguments(parser)
    parser.add_argument("--out", required=True, help="collection directory to create")
    parser.add_argument(
        "--retriever",
        choices=RETRIEVER_NAMES,
        default="hybrid",
        help="what to build (default: %(default)s: dense vectors and BM25)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing collection at --out"
    )
    add_encoding_arguments(parser)
    add_ray_arguments(parser, workers=True)
    parser.add_argument(
        "--shards",
        type=int,
        metavar="N",
        help="split the collection into N shards by a hash of each document id: one directory "
        "of N collections, searched together (docs/scale.md)",
    )
    parser.add_argument(
        "--index",
        default="flat",
        metavar="SPEC",
        help="dense index: flat (exact, default), HNSW32, IVF256,PQ48, binary+rescore*4, "
        "int8+rescore*4, dim128:HNSW32+rescore*4 ... (grammar: docs/index-specs.md)",
    )
    parser.add_argument(
        "--language",
        metavar="CODE",
        help=f"BM25's language: its stemmer and stop words ({', '.join(LANGUAGES)}; zh, ja, "
        "ko: character bigrams; none: words exactly as written; default: en, or --stemmer)",
    )
    parser.add_argument(
        "--stemmer",
        help=f"BM25's stemmer alone: a PyStemmer language (default: "
        f"{BuildOptions.bm25_stemmer}), or none to match words exactly",
    )
    parser.add_argument(
        "--exact-words",
        type=float,
        metavar="W",
        help="BM25 also indexes each word as written, counting W against its stem's 1, so the "
        f"query's own word outranks its relatives (default {HYBRID_TERMS.exact:g} in a hybrid, "
        "0 in a bm25 collection: classic BM25)",
    )
    parser.add_argument(
        "--word-pairs",
        type=float,
        metavar="W",
        help="BM25 also indexes adjacent word pairs, counting W, so a phrase outranks its words "
        f"apart (default {HYBRID_TERMS.pairs:g} in a hybrid, 0 in a bm25 collection)",
    )
    parser.add_argument(
        "--sparse",
        metavar="MODEL",
        help="also build a learned sparse (SPLADE) index with this model: splade-tiny "
        "(bundled), a SPLADE folder or hub name",
    )
    parser.add_argument(
        "--multivector",
        metavar="MODEL",
        help="also store every document's token vectors for multi-vector (ColBERT) search, "
        "encoded with this late-interaction model: a folder from densekit train --loss colbert, "
        "or a ColBERT checkpoint (Stanford or PyLate; a folder or hub name)",
    )
    given = parser.add_argument_group("vectors made elsewhere (instead of encoding)")
    given.add_argument(
        "--vectors",
        metavar="FILE",
        help="document vectors: .npy (rows in corpus order), .parquet (id and vector columns) "
        "or a densekit encode folder; normalised to unit length",
    )
    given.add_argument("--vector-ids", metavar="FILE", help="ids of a .npy's rows (.txt or .json)")
    given.add_argument(
        "--vectors-model",
        metavar="MODEL",
        help="the model that made them, if densekit can run it to encode queries (a local model "
        "or openai:MODEL@URL); without it, search with --query-vectors",
    )
    add_fusion_arguments(
        parser,
        f"saved as the collection default; default {DEFAULT_FUSION.method}",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    options = BuildOptions(
        **build_options_from(
            args,
            retriever=args.retriever,
            fusion=(fusion_from(args, DEFAULT_FUSION) or DEFAULT_FUSION).to_dict(),
            index=args.index,
            sparse=args.sparse,
            multivector=args.multivector,
            bm25_stemmer=stemmer_for(args),
            bm25_language=args.language,
            bm25_exact_weight=args.exact_words,
            bm25_pair_weight=args.word_pairs,
            vectors=args.vectors,
            vector_ids=args.vector_ids,
            vectors_model=args.vectors_model,
        )
    )
    check_ray_arguments(args)
    if args.ray is not None and (options.retriever == "bm25" or options.vectors is not None):
        raise InputError(
            "--ray distributes encoding; this collection encodes nothing (a bm25 collection, or "
            "--vectors given): drop --ray"
        )
    encoder = options.load_encoder() if args.ray is not None else None
    with remote_encoding(args, options, encoder) if encoder else nullcontext() as remote:
        return _build(args, options, encoder, remote)


def _build(
    args: argparse.Namespace,
    options: BuildOptions,
    encoder: Encoder | None,
    remote: PartitionEncoder | None,
) -> int:
    if args.shards is not None:
        sharded = build_sharded(
            args.corpus,
            args.out,
            options,
            shards=args.shards,
            overwrite=args.overwrite,
            encoder=encoder,
            remote=remote,
        )
        with sharded:
            sizes = ", ".join(str(len(shard)) for shard in sharded.shards)
            print(
                f"built {args.out}: {len(sharded)} documents in {len(sharded.shards)} shards "
                f"({sizes}), retrievers {', '.join(sharded.retrievers)}"
            )
        return 0
    collection = build_collection(
        args.corpus, args.out, options, overwrite=args.overwrite, encoder=encoder, remote=remote
    )
    stats = collection.manifest.stats
    summary = report_encoding(
        stats.get("skipped_empty", 0), stats.get("skipped_empty_ids", []), stats.get("encoding")
    )
    print(
        f"built {args.out}: {collection.manifest.documents} documents, "
        f"retrievers {', '.join(collection.retrievers)}{summary}"
    )
    return 0


def stemmer_for(args: argparse.Namespace) -> str:
    """``--stemmer``, refused beside a ``--language`` that sets another; without it, the
    default."""
    if args.stemmer is not None and args.language is not None:
        wanted = language_settings(args.language).stemmer
        if args.stemmer != wanted:
            raise InputError(
                f"--language {args.language} sets the stemmer {wanted!r} itself; drop "
                f"--stemmer {args.stemmer}, or drop --language"
            )
    # The default beside a language: BuildOptions takes the language's stemmer then.
    return args.stemmer or BuildOptions.bm25_stemmer
