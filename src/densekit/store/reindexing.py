"""Reindexing: give a collection another dense index over the vectors it holds, as one atomic
commit.

Nothing is encoded again: the new generation holds the new index (and copies of the document
store and tombstones, as every generation does), and the manifest names the new index beside the
earlier generations' shards, BM25, sparse and token indexes. A reader sees the old index or the
new one, never a mix; the old index file goes once no manifest names it.
"""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime
from pathlib import Path

from densekit.errors import CollectionError, InputError
from densekit.files.durability import writing
from densekit.index.ann import save_codes
from densekit.index.codes import CodeIndex
from densekit.index.learned_binary import BinaryHead, lsh_index
from densekit.index.spec import IndexSpec, parse_spec
from densekit.store import layout
from densekit.store.change_writer import still_named
from densekit.store.commit import open_for_writing, publish, staged_generation
from densekit.store.indexing import build_ann_index
from densekit.store.manifest import Manifest
from densekit.store.sharded import is_sharded


def reindex_collection(
    directory: str | Path, spec: str | IndexSpec, *, head: BinaryHead | None = None
) -> Manifest:
    """Index the dense vectors of the collection at ``directory`` with ``spec``; a learned
    binary spec codes them with ``head`` when given (trained on queries), else learns its own.
    Returns the published manifest."""
    directory = Path(directory)
    if is_sharded(directory):
        raise InputError(
            f"{directory}: a sharded collection; reindex each of its shards (the folders its "
            "manifest names), or build it again with --index"
        )
    parsed = parse_spec(spec) if isinstance(spec, str) else spec
    if head is not None and not parsed.is_learned_binary:
        raise InputError(f"a learned binary head codes binary(learned=1) indexes, not {parsed}")
    with open_for_writing(directory) as current:
        old = current.manifest
        dense = old.dense
        if dense is None or old.encoder is None:
            raise CollectionError(
                f"{directory}: no dense vectors to index; rebuild it with --retriever dense or "
                "hybrid"
            )
        if old.adapter is not None and old.adapter.maps_documents and not parsed.is_exact:
            raise CollectionError(
                f"{directory}: its adapter maps documents, which needs the exact index; remove "
                "the adapter first (densekit adapt --remove) or keep --index flat"
            )
        with staged_generation(directory) as (generation, root):
            for name in (layout.DOCUMENTS_FILE, layout.TOMBSTONES_FILE):
                source = directory / old.generation / name
                if source.exists():
                    shutil.copyfile(source, root / name)
            vectors, groups = current.dense_vectors()
            if head is not None:
                parsed = _fitted_to(parsed, head, vectors.dimension)
            index_file = index_digest = None
            if not parsed.is_exact:
                if head is None:
                    record = build_ann_index(parsed, vectors, groups.offsets, root, generation)
                else:
                    codes = CodeIndex(parsed, lsh_index(head), vectors.dimension)
                    codes.add(vectors)
                    with writing(root):
                        record = save_codes(codes, root)
                    record["file"] = f"{generation}/{record['file']}"
                index_file, index_digest = record["file"], record["digest"]
            new_dense = dataclasses.replace(
                dense, index=str(parsed), index_file=index_file, index_digest=index_digest
            )
            folders = (old.lexical, old.sparse, old.multivector)
            kept = {
                name: size
                for name, size in old.files.items()
                if still_named(name, new_dense, folders)
            }
            manifest = dataclasses.replace(
                old,
                generation=generation,
                tombstones=f"{generation}/{layout.TOMBSTONES_FILE}" if old.tombstones else None,
                created=datetime.now(UTC).isoformat(timespec="seconds"),
                files={**kept, **layout.files_with_sizes(directory, generation)},
                dense=new_dense,
                stats={**old.stats, "reindexed": {"from": dense.index, "to": str(parsed)}},
            )
            return publish(directory, manifest)


def _fitted_to(spec: IndexSpec, head: BinaryHead, dimension: int) -> IndexSpec:
    """``spec`` naming ``head``'s bit count; a head for other vectors is refused."""
    coded = spec.dim or dimension
    if head.dimension != coded:
        raise InputError(
            f"the binary head codes {head.dimension}-dimensional vectors, index {spec} "
            f"{coded}-dimensional ones"
        )
    return dataclasses.replace(spec, options={**spec.options, "bits": head.bits})
