"""Writes one change's generation of a collection: documents, tombstones, new vectors and
indexes, and the manifest that will name them."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from densekit.corpus.chunking import ChunkConfig, document_passages
from densekit.corpus.document import Document
from densekit.encode.base import Encoder
from densekit.files.durability import save_array
from densekit.files.shards import open_shards
from densekit.index.ann import extend_saved_index
from densekit.index.bm25_statistics import CorpusStatistics
from densekit.index.vectors import ShardedVectors
from densekit.store import layout
from densekit.store.change_plan import ChangePlan
from densekit.store.collection import StoredCollection
from densekit.store.documents import DocumentStore, DocumentWriter
from densekit.store.encoding_run import Passage, encode_passages
from densekit.store.indexing import index_lexical, index_sparse
from densekit.store.manifest import (
    DenseInfo,
    LexicalInfo,
    Manifest,
    MultiVectorInfo,
    SparseInfo,
)
from densekit.store.multivector import extend_multivector, token_index_file


class ChangeWriter:
    """Writes one change's generation from the published collection ``current``."""

    def __init__(
        self, current: StoredCollection, generation: str, root: Path, progress: bool
    ) -> None:
        self.current = current
        self.old: Manifest = current.manifest
        self.directory = current.directory
        self.generation = generation
        self.root = root
        self.progress = progress
        self.encoding: dict[str, Any] | None = None

    def write(
        self,
        plan: ChangePlan,
        encoder: Encoder | None,
        cache_dir: Path | None,
        lexical_statistics: CorpusStatistics | None = None,
    ) -> Manifest:
        """The change's files in the staged generation, and the manifest naming them; BM25 is
        scored with ``lexical_statistics`` when given (a shard's: the whole collection's)."""
        old = self.old
        documents = self.root / layout.DOCUMENTS_FILE
        shutil.copyfile(self.directory / old.generation / layout.DOCUMENTS_FILE, documents)
        writer = DocumentWriter.extend(documents, first_row=old.document_rows)
        writer.remove(plan.remove)
        writer.add_all(plan.append)
        writer.close()
        tombstones = self._tombstones(plan.remove)
        dense = old.dense
        if dense is not None and plan.append:
            assert encoder is not None  # loaded by update_collection for dense collections
            dense = self._extend_dense(dense, plan.append, encoder, cache_dir)
        sparse = old.sparse
        if sparse is not None and plan.append:
            earlier = self.current.sparse_index.document_vectors()
            sparse = index_sparse(
                plan.append,
                self.root,
                self.generation,
                self.current.sparse_encoder,
                earlier=earlier,
                progress=self.progress,
            )
        multivector = old.multivector
        if multivector is not None and plan.append:
            current = self.current
            multivector = extend_multivector(
                plan.append,
                self.root,
                self.generation,
                current.multivector_encoder,
                current.multivector_index,
                token_index_file(self.directory, multivector),
                multivector,
                progress=self.progress,
            )
        lexical = old.lexical
        if lexical is not None:
            store = DocumentStore(documents)
            try:
                lexical = index_lexical(
                    store,
                    self.root,
                    self.generation,
                    lexical,
                    progress=self.progress,
                    statistics=lexical_statistics,
                )
            finally:
                store.close()
        live = old.documents - len(plan.remove) + len(plan.append)
        files = {
            **{
                name: size
                for name, size in old.files.items()
                if still_named(name, dense, (sparse, multivector))
            },
            **layout.files_with_sizes(self.directory, self.generation),
        }
        change = {"added": plan.added, "updated": plan.updated, "deleted": plan.deleted}
        return dataclasses.replace(
            old,
            generation=self.generation,
            documents=live,
            deleted=len(tombstones),
            tombstones=f"{self.generation}/{layout.TOMBSTONES_FILE}" if len(tombstones) else None,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            files=files,
            dense=dense,
            lexical=lexical,
            sparse=sparse,
            multivector=multivector,
            stats={**old.stats, "last_change": change},
        )

    def _tombstones(self, removed: list[int]) -> np.ndarray:
        earlier = self.current.deleted
        rows = np.union1d(
            np.flatnonzero(earlier) if earlier is not None else np.empty(0, np.int64),
            np.asarray(removed, dtype=np.int64),
        ).astype(np.int64)
        if len(rows):
            save_array(self.root / layout.TOMBSTONES_FILE, rows)
        return rows

    def _extend_dense(
        self,
        dense: DenseInfo,
        documents: list[Document],
        encoder: Encoder,
        cache_dir: Path | None,
    ) -> DenseInfo:
        """Encode the new documents into new shards and add them to the index."""
        chunk = None
        if dense.chunk_size is not None:
            chunk = ChunkConfig(dense.chunk_size, dense.chunk_overlap or 0)
        passages: list[Passage] = []
        counts = []
        for document in documents:
            pieces = document_passages(document, encoder.token_spans, chunk)
            counts.append(len(pieces))
            passages.extend(pieces)
        stored, _ = self.current.dense_vectors()
        report, paths = encode_passages(
            passages,
            self.root / layout.EMBEDDINGS_DIR,
            encoder,
            dtype=stored.shards[0].dtype.name if stored.shards else "float32",
            cache_dir=cache_dir,
            progress=self.progress,
            expected=len(passages),
        )
        self.encoding = report.to_dict()
        changed: dict[str, Any] = {
            "shards": [
                *dense.shards,
                *(f"{self.generation}/{layout.EMBEDDINGS_DIR}/{p.name}" for p in paths),
            ],
            "rows": dense.rows + len(passages),
        }
        if dense.passage_offsets is not None:
            offsets = np.load(self.directory / dense.passage_offsets)
            offsets = np.concatenate([offsets, offsets[-1] + np.cumsum(counts, dtype=np.int64)])
            save_array(self.root / layout.PASSAGE_OFFSETS_FILE, offsets)
            changed["passage_offsets"] = f"{self.generation}/{layout.PASSAGE_OFFSETS_FILE}"
        if dense.index_file is not None:
            added = ShardedVectors(open_shards(paths, encoder.dimension))
            record = extend_saved_index(
                self.directory / dense.index_file, dense.index, added, encoder.dimension, self.root
            )
            changed["index_file"] = f"{self.generation}/{record['file']}"
            changed["index_digest"] = record["digest"]
        return dataclasses.replace(dense, **changed)


def still_named(
    name: str,
    dense: DenseInfo | None,
    folders: tuple[LexicalInfo | SparseInfo | MultiVectorInfo | None, ...],
) -> bool:
    """Whether the new manifest still names this file of an earlier generation: a shard (or its
    sidecar), or the passage offsets, index, BM25, sparse index or token vectors when the write
    did not rewrite them (``dense`` and ``folders`` as the new manifest names them)."""
    if any(part is not None and name.startswith(f"{part.directory}/") for part in folders):
        return True
    if dense is None:
        return False
    named = {*dense.shards, *(shard.removesuffix(".npy") + ".json" for shard in dense.shards)}
    return name in named or name in (dense.passage_offsets, dense.index_file)
