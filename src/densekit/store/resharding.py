"""`densekit reshard`: the same collection split into another number of shards.

The documents are routed again by their ids and every shard is built as `--shards N` builds
one, with the settings the collection was built with, but without encoding anything again:
the stored vectors go into a private embedding cache first, and the shard builds read them
from there. The new shards are published as any build is (one write of ``shards.json``; until
then searches see the old layout); a change that lands after the documents were read makes the
reshard stop before anything is written, so no acknowledged write is lost.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from densekit.corpus.chunking import ChunkConfig, document_passages
from densekit.corpus.document import Document
from densekit.encode import Encoder
from densekit.encode.cache import EmbeddingCache, cache_name
from densekit.errors import CollectionError, InputError
from densekit.store.build_options import BuildOptions
from densekit.store.collection import StoredCollection
from densekit.store.layout import SHARDS_FILE
from densekit.store.manifest import MANIFEST_NAME, EncoderInfo, Manifest
from densekit.store.multivector import multivector_model
from densekit.store.sharded import ShardedStore, open_store
from densekit.store.sharded_build import (
    ROUTED_FIELDS,
    build_sharded,
    check_shard_request,
    routed_line,
)

WORK_PREFIX = ".reshard-"  # inside the collection: its documents and warmed cache


def reshard(directory: str | Path, shards: int, *, progress: bool = False) -> ShardedStore:
    """Split the collection at ``directory`` (sharded or not) into ``shards`` shards."""
    directory = Path(directory)
    published = _published(directory)
    store = open_store(directory)
    try:
        options = _options_of(store, progress)
        check_shard_request(shards, options)
        if isinstance(store, ShardedStore) and len(store.shards) == shards:
            raise InputError(f"{directory}: already {shards} shards; nothing to do")
        info = store.manifest.encoder
        encoder = _same_encoder(info, options) if info is not None else None
        work = directory / f"{WORK_PREFIX}{published[:8]}-{shards}"
        corpus = _export(store, work, encoder, options.chunk)
    finally:
        store.close()

    def unchanged() -> None:
        if _published(directory) != published:
            raise CollectionError(
                f"{directory}: changed while its documents were read for resharding; run "
                "densekit reshard again"
            )

    sharded = build_sharded(
        corpus,
        directory,
        dataclasses.replace(options, cache_dir=work / "cache" if encoder else None),
        shards=shards,
        overwrite=True,
        encoder=encoder,
        before_building=unchanged,
    )
    shutil.rmtree(work, ignore_errors=True)
    return sharded


def _same_encoder(info: EncoderInfo, options: BuildOptions) -> Encoder:
    """The collection's model, loaded by its name (or else where it was loaded from) with the
    settings it was built with: the same fingerprint, or the stored vectors would not do."""
    for model in dict.fromkeys((info.name, info.location)):
        try:
            encoder = dataclasses.replace(options, model=model).load_encoder()
        except InputError:
            continue
        if encoder.fingerprint == info.fingerprint:
            return encoder
    raise InputError(
        f"model {info.name!r} (from {info.location}) cannot be loaded here as the collection was "
        "built with it (another version or settings); install that model, or rebuild with --shards"
    )


def _published(directory: Path) -> str:
    """A digest of what is published at ``directory``: it changes with every write."""
    for name in (SHARDS_FILE, MANIFEST_NAME):
        if (directory / name).is_file():
            return hashlib.sha256((directory / name).read_bytes()).hexdigest()
    raise CollectionError(f"{directory}: no collection here (no {MANIFEST_NAME} or {SHARDS_FILE})")


def _options_of(store: StoredCollection | ShardedStore, progress: bool) -> BuildOptions:
    """The settings the collection was built with, as build options."""
    manifest: Manifest = store.manifest
    if manifest.adapter is not None:
        raise InputError(
            f"{store.directory}: has an adapter, which is trained on one layout; reshard the "
            "collection before adapting it"
        )
    encoder, dense, lexical = manifest.encoder, manifest.dense, manifest.lexical
    if encoder is not None and encoder.backend == "precomputed":
        raise InputError(
            f"{store.directory}: holds vectors made elsewhere, which densekit cannot make again "
            "for new shards; build the sharded collection from the corpus and vectors instead"
        )
    chunk = None
    if dense is not None and dense.chunk_size is not None:
        chunk = ChunkConfig(dense.chunk_size, dense.chunk_overlap or 0)
    first = store.shards[0] if isinstance(store, ShardedStore) else store
    storage = "float32"
    if dense is not None:
        vectors, _ = first.dense_vectors()
        storage = vectors.shards[0].dtype.name if vectors.shards else storage
    return BuildOptions(
        model=encoder.name if encoder is not None else BuildOptions.model,
        backend=encoder.backend if encoder is not None else None,
        layers=encoder.layers if encoder is not None else None,
        dim=encoder.dim if encoder is not None else None,
        retriever=manifest.retriever,  # type: ignore[arg-type]
        chunk=chunk,
        corpus_format="jsonl",
        fields=ROUTED_FIELDS,
        dtype=storage,
        index=dense.index if dense is not None else "flat",
        sparse=manifest.sparse.location if manifest.sparse is not None else None,
        multivector=multivector_model(manifest.multivector) if manifest.multivector else None,
        bm25_k1=lexical.k1 if lexical else BuildOptions.bm25_k1,
        bm25_b=lexical.b if lexical else BuildOptions.bm25_b,
        bm25_stemmer=lexical.stemmer if lexical else BuildOptions.bm25_stemmer,
        bm25_stopwords=lexical.stopwords if lexical else BuildOptions.bm25_stopwords,
        bm25_language=lexical.language if lexical else None,
        bm25_exact_weight=lexical.exact_weight if lexical else None,
        bm25_pair_weight=lexical.pair_weight if lexical else None,
        fusion=manifest.fusion,
        progress=progress,
    )


def _parts(store: StoredCollection | ShardedStore) -> list[StoredCollection]:
    return list(store.shards) if isinstance(store, ShardedStore) else [store]


def _export(
    store: StoredCollection | ShardedStore,
    work: Path,
    encoder: Encoder | None,
    chunk: ChunkConfig | None,
) -> Path:
    """The live documents as a corpus file, and (with an encoder) their stored vectors in an
    embedding cache under ``work``; kept when already written (an interrupted reshard)."""
    corpus = work / "corpus.jsonl"
    if corpus.is_file():
        return corpus
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    cache = None
    if encoder is not None:
        cache = EmbeddingCache(work / "cache", cache_name(encoder), encoder.dimension)
    staging = work / "corpus.jsonl.tmp"  # streamed: a collection's text need not fit in memory
    try:
        with staging.open("w", encoding="utf-8") as handle:
            for part in _parts(store):
                for document, vectors in _documents_with_vectors(part, cache is not None):
                    handle.write(routed_line(document))
                    if cache is not None and encoder is not None and vectors is not None:
                        _cache_passages(cache, part, document, vectors, encoder, chunk)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if cache is not None:
            cache.close()
    os.replace(staging, corpus)  # complete, so a rerun keeps it
    return corpus


def _cache_passages(
    cache: EmbeddingCache,
    part: StoredCollection,
    document: Document,
    vectors: np.ndarray,
    encoder: Encoder,
    chunk: ChunkConfig | None,
) -> None:
    """Put ``document``'s stored passage vectors in ``cache`` under the texts a build makes."""
    texts = [text for _, text in document_passages(document, encoder.token_spans, chunk)]
    if len(texts) != len(vectors):
        raise CollectionError(
            f"{part.directory}: document {document.id!r} has {len(vectors)} stored passages, "
            f"but chunking it again gives {len(texts)}; rebuild the collection with --shards "
            "instead"
        )
    cache.put_many(texts, vectors)


def _documents_with_vectors(
    part: StoredCollection, dense: bool
) -> Iterator[tuple[Document, np.ndarray | None]]:
    rows = {doc_id: row for row, doc_id in enumerate(part.row_ids) if doc_id is not None}
    if dense:
        vectors, groups = part.dense_vectors()
    for document in part.documents.iter_documents():
        row = rows.get(document.id)
        if row is None:
            continue  # deleted
        yield document, vectors.take(groups.passages_of(np.array([row]))) if dense else None
