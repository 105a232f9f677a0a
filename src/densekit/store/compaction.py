"""Compaction: rewrite a collection without its tombstones, as one atomic commit.

Live documents get consecutive rows again, their vectors are copied (not re-encoded) into fresh
shards, the approximate index is rebuilt and retrained on the live vectors (or, with too few of
them to train IVF/PQ, refilled with its existing training), and BM25 is rebuilt. The result
searches like a fresh build of the live documents, and the generations the tombstones kept
alive are removed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from densekit.files.durability import save_array, writing
from densekit.files.shards import DEFAULT_ROWS_PER_SHARD, ShardMeta, commit_shard, open_shards
from densekit.index.ann import extend_saved_index
from densekit.index.codes import training_minimum
from densekit.index.sparse import SparseIndex
from densekit.index.spec import parse_spec
from densekit.index.vectors import ShardedVectors
from densekit.store import layout
from densekit.store.collection import StoredCollection
from densekit.store.commit import open_for_writing, publish, staged_generation
from densekit.store.documents import DocumentStore, DocumentWriter
from densekit.store.indexing import build_ann_index, index_lexical
from densekit.store.leftovers import clear_leftovers
from densekit.store.manifest import DenseInfo
from densekit.store.multivector import compact_multivector, token_index_file


@dataclass(frozen=True)
class CompactionReport:
    removed: int  # tombstoned document rows reclaimed
    documents: int
    bytes_before: int
    bytes_after: int
    seconds: float


def compact_collection(
    directory: str | Path,
    *,
    rows_per_shard: int = DEFAULT_ROWS_PER_SHARD,
    progress: bool = False,
) -> CompactionReport:
    """Rewrite the collection at ``directory`` without deleted documents; a no-op without any."""
    directory = Path(directory)
    started = time.perf_counter()
    with open_for_writing(directory) as current:
        old = current.manifest
        before = sum(old.files.values())
        if not old.deleted:
            # Nothing to rewrite, but an earlier compaction killed after publishing may have
            # left the generations it superseded: they go now, as after any write.
            clear_leftovers(directory, old)
            return CompactionReport(0, old.documents, before, before, 0.0)
        with staged_generation(directory) as (generation, root):
            documents = root / layout.DOCUMENTS_FILE
            writer = DocumentWriter(documents)
            writer.add_all(current.documents.iter_documents())
            writer.close()
            dense = old.dense
            if dense is not None:
                dense = _compact_dense(current, dense, generation, root, rows_per_shard, progress)
            live = np.flatnonzero(~current.deleted)  # type: ignore[operator]
            sparse = old.sparse
            if sparse is not None:
                vectors = current.sparse_index.document_vectors()[live]
                with writing(root / layout.SPARSE_DIR, discard=True):
                    SparseIndex.from_documents(vectors).save(root / layout.SPARSE_DIR)
                sparse = dataclasses.replace(sparse, directory=f"{generation}/{layout.SPARSE_DIR}")
            multivector = old.multivector
            if multivector is not None:
                multivector = compact_multivector(
                    current.multivector_index,
                    token_index_file(directory, multivector),
                    live,
                    root,
                    generation,
                    multivector,
                )
            lexical = old.lexical
            if lexical is not None:
                store = DocumentStore(documents)
                try:
                    lexical = index_lexical(store, root, generation, lexical, progress=progress)
                finally:
                    store.close()
            files = layout.files_with_sizes(directory, generation)
            manifest = dataclasses.replace(
                old,
                generation=generation,
                deleted=0,
                tombstones=None,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                files=files,
                dense=dense,
                lexical=lexical,
                sparse=sparse,
                multivector=multivector,
                stats={**old.stats, "compacted": old.deleted},
            )
            manifest = publish(directory, manifest)
    return CompactionReport(
        removed=old.deleted,
        documents=old.documents,
        bytes_before=before,
        bytes_after=sum(manifest.files.values()),
        seconds=round(time.perf_counter() - started, 3),
    )


def _compact_dense(
    current: StoredCollection,
    dense: DenseInfo,
    generation: str,
    root: Path,
    rows_per_shard: int,
    progress: bool,
) -> DenseInfo:
    """Copy the live passages' vectors into new shards and rebuild the index over them."""
    vectors, groups = current.dense_vectors()
    assert groups.deleted is not None  # compaction runs only with tombstones
    live_documents = np.flatnonzero(~groups.deleted)
    if groups.offsets is None:
        live_rows, offsets = live_documents, None
    else:
        starts = groups.offsets[live_documents]
        counts = groups.offsets[live_documents + 1] - starts
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        live_rows = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    passage_ids = _passage_ids(current.directory, dense.shards)
    dtype = vectors.shards[0].dtype.name
    embeddings = root / layout.EMBEDDINGS_DIR
    names = []
    blocks = range(0, len(live_rows), rows_per_shard)
    for number, start in enumerate(tqdm(blocks, desc="compacting", disable=not progress)):
        rows = live_rows[start : start + rows_per_shard]
        ids = [passage_ids[row] for row in rows]
        # Copied, not encoded: the digest covers the passage ids (no texts are at hand).
        digest = hashlib.sha256("\0".join(ids).encode("utf-8")).hexdigest()
        commit_shard(
            embeddings, number, vectors.take(rows), ShardMeta(len(rows), digest, ids), dtype
        )
        names.append(f"{number:05d}.npy")
    paths = [embeddings / name for name in names]
    changed: dict[str, object] = {
        "shards": [f"{generation}/{layout.EMBEDDINGS_DIR}/{name}" for name in names],
        "rows": len(live_rows),
        "passage_offsets": None,
    }
    if offsets is not None:
        save_array(root / layout.PASSAGE_OFFSETS_FILE, offsets)
        changed["passage_offsets"] = f"{generation}/{layout.PASSAGE_OFFSETS_FILE}"
    spec = parse_spec(dense.index)
    if not spec.is_exact:
        assert dense.index_file is not None  # every spec but flat saves one
        compacted = ShardedVectors(open_shards(paths, vectors.dimension))
        # A learned binary head may have been trained on queries (densekit adapt --kind
        # binary): it is kept, as are IVF/PQ codebooks when too few live vectors are left.
        if compacted.rows >= training_minimum(spec) and not spec.is_learned_binary:
            record = build_ann_index(spec, compacted, offsets, root, generation)
        else:  # keep what the index learned, refill it
            source = current.directory / dense.index_file
            record = extend_saved_index(
                source, dense.index, compacted, vectors.dimension, root, refill=True
            )
            record["file"] = f"{generation}/{record['file']}"
        changed["index_file"] = record["file"]
        changed["index_digest"] = record["digest"]
    return dataclasses.replace(dense, **changed)  # type: ignore[arg-type]


def _passage_ids(directory: Path, shards: list[str]) -> list[str]:
    """Every passage's id, in row order, from the shards' sidecars."""
    ids: list[str] = []
    for shard in shards:
        sidecar = (directory / shard).with_suffix(".json")
        ids.extend(json.loads(sidecar.read_text(encoding="utf-8"))["ids"])
    return ids
