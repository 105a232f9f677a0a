"""An opened collection directory: its manifest, documents, vectors and indexes, read-only.

Searching lives above the store: :class:`densekit.retrieve.Collection` wraps this.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densekit.errors import CollectionError, InputError, ModelMismatchError
from densekit.files.shards import NPY_OPEN_LOCK, open_shards
from densekit.store import layout
from densekit.store.document_filters import DocumentFilters
from densekit.store.documents import DocumentStore
from densekit.store.manifest import EncoderInfo, Manifest, read_manifest, verify_files
from densekit.store.multivector import (
    open_token_vectors,
    token_encoder_of,
    without_token_vectors,
)
from densekit.store.row_files import corrupt, load_rows, open_tombstones

# Opening retries when writes publish new generations while it reads.
_OPEN_ATTEMPTS = 3

if TYPE_CHECKING:
    from densekit.encode import Encoder
    from densekit.encode.adapters.applied import AppliedAdapter
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.encode.precomputed import PrecomputedQueries
    from densekit.encode.sparse import SparseTextEncoder
    from densekit.files.vectors import VectorTable
    from densekit.index import FlatIndex, LexicalIndex
    from densekit.index.ann import AnnIndex
    from densekit.index.late_interaction import MultiVectorIndex
    from densekit.index.sparse import SparseIndex
    from densekit.index.vectors import PassageGroups, ShardedVectors


class StoredCollection:
    """A collection directory, opened read-only: one snapshot of what it holds.

    Opening checks the manifest and that every file it names is there, whole; a missing, partial
    or corrupt collection is refused with a message saying which and what to do.
    """

    def __init__(self, directory: str | Path, *, manifest: Manifest | None = None) -> None:
        """``manifest``: open this one (a sharded collection's pinned manifest of the shard)
        instead of the directory's published one."""
        self.directory = Path(directory)
        self._encoder: Encoder | None = None
        for attempt in range(_OPEN_ATTEMPTS):
            self.manifest: Manifest = manifest or read_manifest(self.directory)
            try:
                with NPY_OPEN_LOCK:  # see shards.NPY_OPEN_LOCK
                    self._open()
                return
            except (CollectionError, OSError):
                # A write may have published (and cleaned up after) between reading the manifest
                # and opening its files: then open the new one. Otherwise it is truly broken.
                if hasattr(self, "documents"):
                    self.documents.close()
                if manifest or attempt + 1 == _OPEN_ATTEMPTS or not self._superseded():
                    raise

    def _open(self) -> None:
        verify_files(self.directory, self.manifest)
        # Everything is opened now, so a collection keeps answering, on the snapshot it opened,
        # after a change or a rebuild publishes another.
        self.deleted = open_tombstones(self.directory, self.manifest)
        self._dense_parts: tuple[ShardedVectors, PassageGroups] | None = None
        self.documents = self._open_documents()
        self.adapter = self._open_adapter()
        self._dense = self._open_dense()
        self._lexical = self._open_lexical()
        self._sparse = self._open_sparse()
        self._sparse_encoder: SparseTextEncoder | None = None
        self._multivector = open_token_vectors(self.directory, self.manifest, self.deleted)
        self._multivector_encoder: LateInteractionEncoder | None = None

    def _superseded(self) -> bool:
        try:
            # Any rewrite counts: attaching an adapter keeps the generation but replaces the
            # adapter folder the old manifest named.
            return read_manifest(self.directory) != self.manifest
        except CollectionError:
            return False

    def __len__(self) -> int:
        """Live documents (deleted ones are not counted)."""
        return self.manifest.documents

    def __repr__(self) -> str:
        where = str(self.directory)
        return f"StoredCollection({where!r}, documents={len(self)}, retrievers={self.retrievers})"

    def __enter__(self) -> StoredCollection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def retrievers(self) -> list[str]:
        return self.manifest.retrievers

    @cached_property
    def row_ids(self) -> list[str | None]:
        """The document id of each row of the document space; ``None`` for deleted rows."""
        return self.documents.ids_by_row(self.manifest.document_rows)

    def reference_documents(self, count: int) -> np.ndarray:
        """Rows of ``count`` live documents (all, when fewer) chosen by a hash of their ids, in
        hash order: the same documents in the same order however the rows are laid out, so a
        changed collection measures scores (ScoreScale) as a fresh build of its documents."""
        keyed = sorted(
            (zlib.crc32(doc_id.encode("utf-8")), doc_id, row)
            for row, doc_id in enumerate(self.row_ids)
            if doc_id is not None
        )
        return np.array([row for _, _, row in keyed[:count]], dtype=np.int64)

    @cached_property
    def filters(self) -> DocumentFilters:
        """This snapshot's document filters (:meth:`DocumentFilters.mask`)."""
        return DocumentFilters(self.documents.connection, self.manifest.document_rows)

    @property
    def document_filters(self) -> list[DocumentFilters]:
        """The filters of every part a filter is checked across (one, unsharded)."""
        return [self.filters]

    @cached_property
    def doc_ids(self) -> list[str]:
        """The live documents' ids, in row order."""
        return [doc_id for doc_id in self.row_ids if doc_id is not None]

    @property
    def dense_index(self) -> FlatIndex | AnnIndex:
        if self._dense is None:
            raise self._without_dense()
        return self._dense

    @property
    def lexical_index(self) -> LexicalIndex:
        if self._lexical is None:
            raise CollectionError(
                f"{self.directory}: built without a BM25 index; rebuild with "
                "--retriever bm25 or hybrid"
            )
        return self._lexical

    def _without_dense(self) -> CollectionError:
        return CollectionError(
            f"{self.directory}: built without dense vectors; rebuild with "
            "--retriever dense or hybrid"
        )

    def _corrupt(self, what: str) -> CollectionError:
        return corrupt(self.directory, what)

    def _open_documents(self) -> DocumentStore:
        path = self.directory / self.manifest.generation / layout.DOCUMENTS_FILE
        try:
            store = DocumentStore(path)
            count = len(store)
        except sqlite3.DatabaseError as exc:
            raise self._corrupt(f"{path.name} is not a readable database ({exc})") from None
        if count != self.manifest.documents:
            raise self._corrupt(
                f"{count} documents stored, the manifest says {self.manifest.documents}"
            )
        return store

    def _open_dense(self) -> FlatIndex | AnnIndex | None:
        from densekit.index import FlatIndex
        from densekit.index.ann import AnnIndex

        dense = self.manifest.dense
        if dense is None or self.manifest.encoder is None:
            return None
        vectors, groups = self.dense_vectors()
        index: FlatIndex | AnnIndex
        if self.adapter is not None and self.adapter.maps_documents:
            if dense.index_file is not None:
                raise self._corrupt("an adapter that maps documents on an approximate index")
            # The stored vectors stay the model's own (writes append those); the map is applied
            # once per snapshot, in memory.
            mapped = [self.adapter.documents(np.asarray(shard)) for shard in vectors.shards]
            index = FlatIndex(mapped, groups.offsets, groups.deleted)
        elif dense.index_file is None:
            index = FlatIndex.over(vectors, groups)
        else:
            index = AnnIndex.load(
                self.directory / dense.index_file,
                dense.index,
                vectors,
                groups,
                rows=dense.rows,
                digest=dense.index_digest or "",
            )
        if index.rows != dense.rows or index.documents != self.manifest.document_rows:
            raise self._corrupt(
                f"{index.rows} vectors for {index.documents} document rows, the manifest says "
                f"{dense.rows} for {self.manifest.document_rows}"
            )
        return index

    def _open_adapter(self) -> AppliedAdapter | None:
        info = self.manifest.adapter
        if info is None:
            return None
        from densekit.encode.adapters.applied import AppliedAdapter

        folder = self.directory / info.folder
        for name, size in info.files.items():
            path = folder / name
            if not path.is_file() or path.stat().st_size != size:
                raise self._corrupt(f"the adapter file {info.folder}/{name} is missing or changed")
        try:
            return AppliedAdapter.load(folder, self._encoder_info().fingerprint)
        except InputError as exc:
            raise self._corrupt(str(exc)) from None

    def dense_vectors(self) -> tuple[ShardedVectors, PassageGroups]:
        """The stored float vectors (memory-mapped), their grouping into documents, and which
        documents are deleted: opened once, so they stay this snapshot's."""
        if self._dense_parts is None:
            self._dense_parts = self._open_dense_vectors()
        return self._dense_parts

    def _open_dense_vectors(self) -> tuple[ShardedVectors, PassageGroups]:
        from densekit.index.vectors import PassageGroups, ShardedVectors

        dense, encoder = self.manifest.dense, self.manifest.encoder
        if dense is None or encoder is None:
            raise self._without_dense()
        shards = open_shards([self.directory / s for s in dense.shards], encoder.dimension)
        offsets = None
        if dense.passage_offsets is not None:
            offsets = load_rows(self.directory, dense.passage_offsets, "passage offsets file")
        vectors = ShardedVectors(shards)
        return vectors, PassageGroups(vectors.rows, offsets, self.deleted)

    def _open_lexical(self) -> LexicalIndex | None:
        from densekit.index import LexicalIndex

        lexical = self.manifest.lexical
        if lexical is None:
            return None
        index = LexicalIndex.load(
            self.directory / lexical.directory,
            stemmer=lexical.stemmer,
            stopwords=lexical.stopwords,
            terms=lexical.terms,
        )
        if index.documents != self.manifest.documents:
            raise self._corrupt(
                f"the BM25 index holds {index.documents} documents, the manifest says "
                f"{self.manifest.documents}"
            )
        return index

    def _open_sparse(self) -> SparseIndex | None:
        from densekit.index.sparse import SparseIndex

        sparse = self.manifest.sparse
        if sparse is None:
            return None
        index = SparseIndex.load(self.directory / sparse.directory, self.deleted)
        if index.documents != self.manifest.document_rows:
            raise self._corrupt(
                f"the sparse index holds {index.documents} documents, the manifest says "
                f"{self.manifest.document_rows}"
            )
        return index

    @property
    def sparse_index(self) -> SparseIndex:
        if self._sparse is None:
            raise CollectionError(
                f"{self.directory}: built without a sparse index; rebuild with --sparse "
                "splade-tiny (or another SPLADE model)"
            )
        return self._sparse

    @property
    def sparse_encoder(self) -> SparseTextEncoder:
        """The collection's sparse model, loaded on first use and checked by fingerprint."""
        if self._sparse_encoder is None:
            from densekit.encode.registry import REGISTRY, ModelSpec
            from densekit.encode.sparse import SparseTextEncoder

            info = self.manifest.sparse
            if info is None:
                raise CollectionError(f"{self.directory}: built without a sparse index")
            entry = REGISTRY.get(info.name)
            location = entry.locate() if entry is not None else info.location
            spec = ModelSpec(name=info.name, location=location, backend="sparse")
            encoder = SparseTextEncoder(spec, max_tokens=info.max_tokens)
            if encoder.fingerprint != info.fingerprint:
                raise ModelMismatchError(
                    f"{self.directory}: the sparse model at {location} is not the one the "
                    f"collection was built with (fingerprint {encoder.fingerprint[:12]} vs "
                    f"{info.fingerprint[:12]}); rebuild the collection"
                )
            self._sparse_encoder = encoder
        return self._sparse_encoder

    @property
    def multivector_index(self) -> MultiVectorIndex:
        if self._multivector is None:
            raise without_token_vectors(self.directory)
        return self._multivector

    @property
    def multivector_encoder(self) -> LateInteractionEncoder:
        """The late-interaction model of the token vectors, loaded on first use, checked by
        fingerprint."""
        if self._multivector_encoder is None:
            self._multivector_encoder = token_encoder_of(self.directory, self.manifest)
        return self._multivector_encoder

    @property
    def encoder(self) -> Encoder:
        """The collection's own model, loaded on first use and checked against the fingerprint."""
        if self._encoder is None:
            from densekit.encode import load_encoder

            info = self._encoder_info()
            if info.backend == "precomputed":
                raise CollectionError(
                    f"{self.directory}: built from vectors made elsewhere, with no model to "
                    "encode text; search it with query vectors (--query-vectors FILE), add "
                    "documents by rebuilding with their vectors, or rebuild with "
                    "--vectors-model naming the model that made them"
                )
            model = load_encoder(info.model_spec(), max_tokens=info.max_tokens)
            self._encoder = self.check_encoder(model)
        return self._encoder

    def check_encoder(self, encoder: Encoder) -> Encoder:
        """``encoder``, if it is the collection's model; another model is refused."""
        info = self._encoder_info()
        if encoder.fingerprint != info.fingerprint:
            raise ModelMismatchError(
                f"{self.directory} was built with model {info.name!r} (fingerprint "
                f"{info.fingerprint[:12]}), but the queries would be encoded with "
                f"{encoder.name!r} (fingerprint {encoder.fingerprint[:12]}); its vectors are not "
                "comparable. Use the collection's model, or rebuild the collection with this one"
            )
        return encoder

    def given_query_vectors(
        self, table: VectorTable, queries: Mapping[str, str]
    ) -> PrecomputedQueries:
        """An encoder standing in for the collection's model: it gives ``queries`` (id → text)
        their vectors in ``table``, made elsewhere by that model."""
        from densekit.encode.precomputed import PrecomputedQueries

        info = self._encoder_info()
        return PrecomputedQueries.for_queries(
            table, queries, name=info.name, fingerprint=info.fingerprint, dimension=info.dimension
        )

    @property
    def encoder_info(self) -> EncoderInfo:
        """The model the dense vectors come from; a BM25-only collection has none."""
        return self._encoder_info()

    def _encoder_info(self) -> EncoderInfo:
        info = self.manifest.encoder
        if info is None:
            raise CollectionError(
                f"{self.directory}: built for BM25 only, so it has no model; "
                "rebuild with --retriever dense or hybrid to search with one"
            )
        return info

    def close(self) -> None:
        self.documents.close()
