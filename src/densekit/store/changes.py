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

import time
from collections.abc import Iterable
from pathlib import Path

from densekit.corpus.document import Document
from densekit.encode.base import Encoder
from densekit.encode.cache import default_cache_dir
from densekit.errors import InputError
from densekit.store.change_plan import (
    ChangeReport,
    DocumentConflictError,
    UnknownDocumentError,
    plan_change,
)
from densekit.store.change_writer import ChangeWriter
from densekit.store.commit import open_for_writing, publish, staged_generation
from densekit.store.compaction import compact_collection
from densekit.store.sharded import is_sharded
from densekit.store.sharded_changes import update_sharded

__all__ = [
    "ChangeReport",
    "DocumentConflictError",
    "UnknownDocumentError",
    "plan_change",
    "update_collection",
]


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
    that share of the document rows are tombstones. A sharded collection routes each document
    to its shard and publishes every shard's part at once
    (:func:`~densekit.store.sharded_changes.update_sharded`).
    """
    directory = Path(directory)
    if compact_above is not None and not 0.0 <= compact_above <= 1.0:
        raise InputError(f"compact_above is a share of rows in [0, 1], got {compact_above}")
    cache_dir = (cache_dir or default_cache_dir()) if cache else None
    if is_sharded(directory):
        if compact_above is not None:
            raise InputError(
                f"{directory}: a sharded collection is not compacted yet; drop compact_above "
                "(--compact-above)"
            )
        change = {"add": add, "update": update, "upsert": upsert, "delete": delete}
        return update_sharded(
            directory, **change, encoder=encoder, cache_dir=cache_dir, progress=progress
        )
    started = time.perf_counter()
    with open_for_writing(directory) as current:
        plan = plan_change(
            current.documents, str(directory), add=add, update=update, upsert=upsert, delete=delete
        )
        if current.manifest.encoder is not None and plan.append:
            # A given model is checked: one other than the collection's is refused.
            encoder = current.encoder if encoder is None else current.check_encoder(encoder)
        with staged_generation(directory) as (generation, root):
            writer = ChangeWriter(current, generation, root, progress)
            manifest = writer.write(plan, encoder, cache_dir)
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
