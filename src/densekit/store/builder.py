"""Build a collection: ingest, encode, index, then publish with one atomic manifest write."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from densekit.corpus.chunking import ChunkConfig, document_passages
from densekit.corpus.document import Document
from densekit.corpus.in_memory import MemoryCorpus, is_in_memory
from densekit.corpus.readers import CorpusReader
from densekit.encode import Encoder, load_encoder
from densekit.encode.late_interaction import LateInteractionEncoder
from densekit.encode.sparse import SparseTextEncoder
from densekit.errors import InputError
from densekit.files.durability import save_array
from densekit.files.shards import open_shards
from densekit.files.vectors import VectorTable, read_vectors
from densekit.index.bm25_statistics import CorpusStatistics
from densekit.index.spec import parse_spec
from densekit.index.vectors import ShardedVectors
from densekit.store import layout
from densekit.store.build_options import BuildOptions, fusion_table
from densekit.store.collection import StoredCollection
from densekit.store.commit import publish
from densekit.store.documents import DocumentStore, DocumentWriter
from densekit.store.encoding_run import PartitionEncoder, Passage, encode_passages
from densekit.store.given_vectors import (
    given_encoder_info,
    store_given_vectors,
    vectors_fingerprint,
)
from densekit.store.indexing import build_ann_index, index_lexical, index_sparse
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import (
    DenseInfo,
    EncoderInfo,
    LexicalInfo,
    Manifest,
)
from densekit.store.multivector import index_multivector, load_multivector_encoder
from densekit.store.sharded import retire_shards


def build_collection(
    corpus: str | Path | Iterable[Document | Mapping[str, Any]] | Any,
    out: str | Path,
    options: BuildOptions | None = None,
    *,
    overwrite: bool = False,
    encoder: Encoder | None = None,
    lexical_statistics: CorpusStatistics | None = None,
    remote: PartitionEncoder | None = None,
) -> StoredCollection:
    """Build a collection from ``corpus`` into ``out`` and return it opened.

    ``corpus``: a corpus file or folder, or documents in memory: a list or generator of
    :class:`~densekit.corpus.Document` or dicts, a pandas DataFrame, a ``datasets.Dataset``
    (read once, streamed as a file is; see :mod:`densekit.corpus.in_memory`).

    ``remote``: encode the embedding shards with these workers (a cluster's,
    :func:`densekit.distributed.ray_encoding`) instead of in this process; the files are the same.

    ``lexical_statistics``: score BM25 with these (a whole collection's, for one of its shards;
    see :mod:`densekit.store.sharded_build`) instead of the corpus's own.

    A crash or Ctrl-C at any point leaves the previous collection (if any) the visible one: the
    unfinished generation is never named by a manifest. Its finished embedding shards stay, and
    the next build with the same settings resumes after them.
    """
    options = options or BuildOptions()
    directory = Path(out)
    reader = open_corpus(corpus, options)
    given = None
    if options.vectors is not None:  # bad vectors fail now, before anything is written
        given = read_vectors(options.vectors, options.vector_ids)
        if given.ids is not None:
            given.by_id()  # repeated ids fail here, not after reading the corpus
        if options.vectors_model is not None:
            encoder = encoder or load_encoder(
                options.vectors_model,
                backend=options.backend,
                layers=options.layers,
                dim=options.dim,
            )
            given.check_dimension(encoder.dimension, f"model {encoder.name!r}")
    elif options.retriever != "bm25":  # a wrong model fails now, not after reading the corpus
        encoder = encoder or options.load_encoder()
        check_chunking(options.chunk, encoder)
    sparse_encoder = SparseTextEncoder(options.sparse) if options.sparse is not None else None
    token_encoder = None
    if options.multivector is not None:
        token_encoder = load_multivector_encoder(options.multivector)
    key = _build_key(reader, options, encoder, given, token_encoder)
    with layout.claimed_output(directory, overwrite=overwrite) as created:
        generation = layout.unfinished_generation(directory, key) or layout.start_generation(
            directory, key
        )
        root = directory / generation
        clear_leftovers(directory, layout.published_manifest(directory), keep=generation)
        try:
            manifest = _build_generation(
                reader,
                directory,
                generation,
                options,
                encoder,
                sparse_encoder,
                given,
                lexical_statistics,
                remote,
                token_encoder,
            )
        except BaseException:
            # Finished shards are kept for the next run to resume from; nothing else is.
            if not layout.has_committed_shards(root):
                shutil.rmtree(directory if created else root, ignore_errors=True)
            raise
        # Past this point an interruption leaves either the old manifest (and a stale
        # generation the next build removes) or the new one: never a manifest without its files.
        publish(directory, manifest)
        retire_shards(directory)  # when it replaced a sharded collection
    return StoredCollection(directory)


def open_corpus(corpus: object, options: BuildOptions) -> CorpusReader | MemoryCorpus:
    """A file or folder's reader, or documents given in memory (a list of Documents or dicts,
    a DataFrame, a datasets.Dataset, a generator: :mod:`densekit.corpus.in_memory`)."""
    if is_in_memory(corpus):
        return MemoryCorpus(corpus, fields=options.fields, on_empty=options.on_empty)
    return CorpusReader(
        corpus,  # type: ignore[arg-type]
        format=options.corpus_format,
        fields=options.fields,
        on_empty=options.on_empty,
    )


def _build_key(
    reader: CorpusReader | MemoryCorpus,
    options: BuildOptions,
    encoder: Encoder | None,
    given: VectorTable | None = None,
    token_encoder: LateInteractionEncoder | None = None,
) -> str:
    """What a resumed build must share with the interrupted one to reuse its shards."""
    settings = {
        "vectors": vectors_fingerprint(given) if given is not None else None,
        "corpus": reader.source,
        "format": reader.format,
        "fields": asdict(options.fields),
        "on_empty": options.on_empty,
        "retriever": options.retriever,
        "fingerprint": encoder.fingerprint if encoder is not None else None,
        "chunk": asdict(options.chunk) if options.chunk else None,
        "rows_per_shard": options.rows_per_shard,
        "dtype": options.dtype,
        "sparse": options.sparse,
        "multivector": token_encoder.fingerprint if token_encoder is not None else None,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()


def check_chunking(chunk: ChunkConfig | None, encoder: Encoder) -> None:
    if chunk is not None and chunk.size > encoder.document_tokens:
        raise InputError(
            f"chunks of {chunk.size} tokens do not fit model {encoder.name!r}, which reads "
            f"{encoder.document_tokens} tokens of a document (after its special tokens and "
            f"prompt); use --chunk-tokens {encoder.document_tokens} or less"
        )


def _build_generation(
    reader: CorpusReader | MemoryCorpus,
    directory: Path,
    generation: str,
    options: BuildOptions,
    encoder: Encoder | None,
    sparse_encoder: SparseTextEncoder | None = None,
    given: VectorTable | None = None,
    lexical_statistics: CorpusStatistics | None = None,
    remote: PartitionEncoder | None = None,
    token_encoder: LateInteractionEncoder | None = None,
) -> Manifest:
    root = directory / generation
    started = time.perf_counter()
    (root / layout.DOCUMENTS_FILE).unlink(missing_ok=True)  # re-read on resume: it is quick
    writer = DocumentWriter(root / layout.DOCUMENTS_FILE)
    try:
        writer.add_all(tqdm(reader, desc="reading", unit="doc", disable=not options.progress))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if writer.count == 0:
        raise InputError(
            f"{reader.name}: no documents to index (skipped empty: {reader.stats.skipped_empty})"
        )
    stats: dict[str, object] = {
        "documents": writer.count,
        "skipped_empty": reader.stats.skipped_empty,
        "skipped_empty_ids": reader.stats.first_skipped,
        "ingest_seconds": round(time.perf_counter() - started, 3),
    }
    store = DocumentStore(root / layout.DOCUMENTS_FILE)
    try:
        encoder_info = dense = lexical = sparse = multivector = None
        if given is not None:
            started = time.perf_counter()
            shard_paths = store_given_vectors(
                store, given, root / layout.EMBEDDINGS_DIR, options.rows_per_shard, options.dtype
            )
            stats["vectors_seconds"] = round(time.perf_counter() - started, 3)
            encoder_info = given_encoder_info(given, encoder)
            dense = _dense_info(
                root, generation, shard_paths, given.dimension, len(store), None, options, stats
            )
        elif options.retriever != "bm25":
            assert encoder is not None  # loaded by build_collection
            encoder_info, dense = _encode(store, root, generation, encoder, options, stats, remote)
        if options.retriever in ("bm25", "hybrid"):
            started = time.perf_counter()
            terms = options.lexical_terms()
            settings = LexicalInfo(
                directory="",
                k1=options.bm25_k1,
                b=options.bm25_b,
                stemmer=options.bm25_stemmer,
                stopwords=options.bm25_stopwords,
                language=options.bm25_language,
                exact_weight=terms.exact,
                pair_weight=terms.pairs,
            )
            lexical = index_lexical(
                store,
                root,
                generation,
                settings,
                progress=options.progress,
                statistics=lexical_statistics,
            )
            stats["bm25_seconds"] = round(time.perf_counter() - started, 3)
        if sparse_encoder is not None:
            started = time.perf_counter()
            sparse = index_sparse(
                list(store.iter_documents()),
                root,
                generation,
                sparse_encoder,
                progress=options.progress,
            )
            stats["sparse_seconds"] = round(time.perf_counter() - started, 3)
        if token_encoder is not None:
            started = time.perf_counter()
            multivector = index_multivector(
                list(store.iter_documents()),
                root,
                generation,
                token_encoder,
                progress=options.progress,
            )
            stats["multivector_seconds"] = round(time.perf_counter() - started, 3)
    finally:
        store.close()
    return Manifest(
        generation=generation,
        documents=writer.count,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        source=reader.source,
        files=layout.files_with_sizes(directory, generation),
        retriever=options.retriever,
        encoder=encoder_info,
        dense=dense,
        lexical=lexical,
        sparse=sparse,
        multivector=multivector,
        fusion=fusion_table(options.fusion),
        stats=stats,
    )


def _encode(
    store: DocumentStore,
    root: Path,
    generation: str,
    encoder: Encoder,
    options: BuildOptions,
    stats: dict[str, object],
    remote: PartitionEncoder | None = None,
) -> tuple[EncoderInfo, DenseInfo]:
    offsets = [0]

    def passages() -> Iterator[Passage]:
        for document in store.iter_documents():
            pieces = document_passages(document, encoder.token_spans, options.chunk)
            offsets.append(offsets[-1] + len(pieces))
            yield from pieces

    report, shard_paths = encode_passages(
        passages(),
        root / layout.EMBEDDINGS_DIR,
        encoder,
        rows_per_shard=options.rows_per_shard,
        dtype=options.dtype,
        cache_dir=options.cache_dir,
        progress=options.progress,
        expected=len(store) if options.chunk is None else None,
        remote=remote,
    )
    stats["encoding"] = report.to_dict()
    stats["encode_seconds"] = report.seconds
    stats["encode_docs_per_second"] = (
        round(len(store) / report.seconds, 2) if report.seconds else None
    )
    grouping = np.asarray(offsets, dtype=np.int64) if options.chunk is not None else None
    dense = _dense_info(
        root, generation, shard_paths, encoder.dimension, report.passages, grouping, options, stats
    )
    return EncoderInfo.of(encoder), dense


def _dense_info(
    root: Path,
    generation: str,
    shard_paths: list[Path],
    dimension: int,
    rows: int,
    offsets: np.ndarray | None,
    options: BuildOptions,
    stats: dict[str, object],
) -> DenseInfo:
    """The dense part of the manifest, after building the approximate index if one is asked."""
    offsets_file = None
    if offsets is not None:
        offsets_file = f"{generation}/{layout.PASSAGE_OFFSETS_FILE}"
        save_array(root / layout.PASSAGE_OFFSETS_FILE, offsets)
    spec = parse_spec(options.index)
    index_record: dict[str, object] = {}
    if not spec.is_exact:
        started = time.perf_counter()
        vectors = ShardedVectors(open_shards(shard_paths, dimension))
        index_record = build_ann_index(spec, vectors, offsets, root, generation)
        stats["index_seconds"] = round(time.perf_counter() - started, 3)
    return DenseInfo(
        index=str(spec),
        shards=[f"{generation}/{layout.EMBEDDINGS_DIR}/{p.name}" for p in shard_paths],
        rows=rows,
        passage_offsets=offsets_file,
        chunk_size=options.chunk.size if options.chunk else None,
        chunk_overlap=options.chunk.overlap if options.chunk else None,
        index_file=index_record.get("file"),  # type: ignore[arg-type]
        index_digest=index_record.get("digest"),  # type: ignore[arg-type]
    )
