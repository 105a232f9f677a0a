"""Add, update and delete documents of a built collection; each call is one atomic commit.

A change writes a new generation that shares the unchanged embedding shards of the one before:
the new documents' passages are encoded into new shards, removed documents become tombstones
(rows that searches skip), an approximate index gets the new vectors by FAISS ``add`` (no
retraining, no rebuild), and BM25 is rebuilt over the live documents (bm25s cannot add to an
index). One manifest rename publishes it all; a collection opened earlier keeps searching the
snapshot it opened. Tombstones cost disk and a little search time until
:func:`~densekit.store.compaction.compact_collection` rewrites the rows.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from densekit.corpus.chunking import ChunkConfig, document_passages
from densekit.corpus.document import Document
from densekit.encode.base import Encoder
from densekit.encode.cache import default_cache_dir
from densekit.errors import InputError
from densekit.files.durability import save_array
from densekit.files.ids import check_id, stored_id
from densekit.files.shards import open_shards
from densekit.index.ann import extend_saved_index
from densekit.index.vectors import ShardedVectors
from densekit.store import layout
from densekit.store.collection import StoredCollection
from densekit.store.commit import open_for_writing, publish, staged_generation
from densekit.store.compaction import compact_collection
from densekit.store.documents import DocumentStore, DocumentWriter
from densekit.store.encoding_run import Passage, encode_passages
from densekit.store.indexing import index_lexical, index_sparse
from densekit.store.manifest import DenseInfo, Manifest, SparseInfo

_PREVIEW = 5


class UnknownDocumentError(InputError):
    """A change names a document the collection does not hold (to update or delete)."""


class DocumentConflictError(InputError):
    """A change conflicts with what the collection holds: an id already there, the same id
    twice, or no documents left afterwards."""


@dataclass(frozen=True)
class ChangeReport:
    """What one change did, and what the collection holds after it."""

    added: int
    updated: int
    deleted: int
    documents: int
    tombstones: int
    seconds: float
    encoding: dict[str, Any] | None = None
    compacted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class ChangePlan:
    """A validated change: rows to tombstone and documents to append, in order."""

    remove: list[int]
    append: list[Document]
    added: int
    updated: int
    deleted: int


def update_collection(
    directory: str | Path,
    *,
    add: Iterable[Document] = (),
    update: Iterable[Document] = (),
    upsert: Iterable[Document] = (),
    delete: Iterable[str] = (),
    encoder: Encoder | None = None,
    cache: bool = True,
    cache_dir: Path | None = None,
    compact_above: float | None = None,
    progress: bool = False,
) -> ChangeReport:
    """Apply one change to the collection at ``directory`` and publish it atomically.

    ``add`` documents must be new, ``update`` documents must exist (they replace the stored
    ones), ``upsert`` documents are added or replace, ``delete`` names ids to remove. Every check
    runs before anything is written: on an error the collection is untouched. With
    ``compact_above`` (a share of rows, e.g. 0.3), the change is followed by a compaction once
    that share of the document rows are tombstones.
    """
    directory = Path(directory)
    if compact_above is not None and not 0.0 <= compact_above <= 1.0:
        raise InputError(f"compact_above is a share of rows in [0, 1], got {compact_above}")
    started = time.perf_counter()
    with open_for_writing(directory) as current:
        plan = plan_change(
            current.documents, str(directory), add=add, update=update, upsert=upsert, delete=delete
        )
        if current.manifest.encoder is not None and plan.append:
            # A given model is checked: one other than the collection's is refused.
            encoder = current.encoder if encoder is None else current.check_encoder(encoder)
        with staged_generation(directory) as (generation, root):
            writer = _ChangeWriter(current, generation, root, progress)
            manifest = writer.write(
                plan, encoder, (cache_dir or default_cache_dir()) if cache else None
            )
            manifest = publish(directory, manifest)
    compacted = False
    if compact_above is not None and manifest.deleted > compact_above * manifest.document_rows:
        compact_collection(directory, progress=progress)
        compacted = True
    return ChangeReport(
        added=plan.added,
        updated=plan.updated,
        deleted=plan.deleted,
        documents=manifest.documents,
        tombstones=0 if compacted else manifest.deleted,
        seconds=round(time.perf_counter() - started, 3),
        encoding=writer.encoding,
        compacted=compacted,
    )


def plan_change(
    store: DocumentStore,
    where: str,
    *,
    add: Iterable[Document] = (),
    update: Iterable[Document] = (),
    upsert: Iterable[Document] = (),
    delete: Iterable[str] = (),
) -> ChangePlan:
    """Check a change against the stored documents; every refusal names the id and its place."""
    adding, updating, upserting = (
        _documents(add, "add"),
        _documents(update, "update"),
        _documents(upsert, "upsert"),
    )
    deleting = list(dict.fromkeys(_ids(delete)))  # naming an id twice deletes it once
    incoming = [*updating, *upserting, *adding]
    _check_incoming(incoming)
    both = sorted(set(deleting) & {document.id for document in incoming})
    if both:
        raise InputError(
            f"document {both[0]!r} is both deleted and written in one change; "
            "to replace it, update it (or add with upsert) without deleting it"
        )
    rows = store.rows_of([*deleting, *(document.id for document in incoming)])
    unknown = [doc_id for doc_id in deleting if doc_id not in rows]
    if unknown:
        raise UnknownDocumentError(
            f"{where}: cannot delete {len(unknown)} unknown document id(s): {_preview(unknown)}; "
            "nothing was changed"
        )
    for document in updating:
        if document.id not in rows:
            raise UnknownDocumentError(
                f"{_place(document)}cannot update document {document.id!r}: it is not in "
                f"{where}; add it instead (densekit add, or --upsert to add or replace)"
            )
    for document in adding:
        if document.id in rows:
            raise DocumentConflictError(
                f"{_place(document)}document {document.id!r} is already in {where}; update "
                "it instead (densekit update, or densekit add --upsert to add or replace)"
            )
    replaced = [document.id for document in [*updating, *upserting] if document.id in rows]
    remove = sorted(rows[doc_id] for doc_id in [*deleting, *replaced])
    if not remove and not incoming:
        raise InputError(f"{where}: no documents to add, update or delete; nothing was changed")
    if len(store) - len(remove) + len(incoming) == 0:
        raise DocumentConflictError(
            f"{where}: the change would delete every document; a collection cannot be empty. "
            "Remove the directory instead"
        )
    return ChangePlan(
        remove=remove,
        append=incoming,
        added=len(incoming) - len(replaced),
        updated=len(replaced),
        deleted=len(deleting),
    )


def _documents(given: Iterable[Document], name: str) -> list[Document]:
    if isinstance(given, Document | str):
        raise InputError(f"{name} takes a list of documents; wrap the single one in a list")
    documents = list(given)
    for document in documents:
        if not isinstance(document, Document):
            raise InputError(
                f"{name} takes densekit.Document objects, got {type(document).__name__}"
            )
    return documents


def _ids(given: Iterable[str]) -> list[str]:
    if isinstance(given, str):
        raise InputError(f"delete takes a list of ids; wrap {given!r} in a list")
    # Stored ids, not new ones: those written before today's id rules can be deleted too.
    return [stored_id(doc_id, f"delete[{index}]") for index, doc_id in enumerate(given)]


def _check_incoming(documents: list[Document]) -> None:
    seen: dict[str, Document] = {}
    for document in documents:
        check_id(document.id, document.source or "a document to write")
        fields = {"text": document.text, "title": document.title}
        for field, value in fields.items():
            if not isinstance(value, str):
                raise InputError(
                    f"{_place(document)}document {document.id!r}: {field} is "
                    f"{type(value).__name__}, not a string"
                )
        if not document.content:
            raise InputError(f"{_place(document)}document {document.id!r} is empty; give it text")
        first = seen.setdefault(document.id, document)
        if first is not document:
            raise DocumentConflictError(
                f"{_place(document)}duplicate document id {document.id!r} in one change (first "
                f"at {first.source or 'an earlier document'}); ids must be unique"
            )


def _place(document: Document) -> str:
    return f"{document.source}: " if document.source else ""


def _preview(ids: list[str]) -> str:
    shown = ", ".join(repr(doc_id) for doc_id in ids[:_PREVIEW])
    return shown + (f" and {len(ids) - _PREVIEW} more" if len(ids) > _PREVIEW else "")


class _ChangeWriter:
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

    def write(self, plan: ChangePlan, encoder: Encoder | None, cache_dir: Path | None) -> Manifest:
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
        lexical = old.lexical
        if lexical is not None:
            store = DocumentStore(documents)
            try:
                lexical = index_lexical(
                    store, self.root, self.generation, lexical, progress=self.progress
                )
            finally:
                store.close()
        live = old.documents - len(plan.remove) + len(plan.append)
        files = {
            **{name: size for name, size in old.files.items() if _shared(name, dense, sparse)},
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


def _shared(name: str, dense: DenseInfo | None, sparse: SparseInfo | None) -> bool:
    """Whether the new manifest still names this file of an earlier generation: a shard (or its
    sidecar), or the passage offsets, index or sparse index when the change did not rewrite
    them."""
    if sparse is not None and name.startswith(f"{sparse.directory}/"):
        return True
    if dense is None:
        return False
    named = {*dense.shards, *(shard.removesuffix(".npy") + ".json" for shard in dense.shards)}
    return name in named or name in (dense.passage_offsets, dense.index_file)
