"""What a collection holds, as `densekit info` and a server's collection info show it."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from densekit.store.integrity import latest_report

if TYPE_CHECKING:
    from densekit.store.collection import StoredCollection
    from densekit.store.sharded import ShardedStore


def collection_info(collection: StoredCollection | ShardedStore) -> dict[str, Any]:
    """The collection's documents, model, indexes, sizes and provenance, for people."""
    from densekit.store.sharded import ShardedStore

    if isinstance(collection, ShardedStore):
        return sharded_info(collection)
    manifest = collection.manifest
    integrity = latest_report(collection.directory, manifest.generation)
    return {
        "directory": str(collection.directory.resolve()),
        "documents": manifest.documents,
        "deleted": manifest.deleted,
        "retrievers": manifest.retrievers,
        "default_retriever": manifest.retriever,
        "model": None
        if manifest.encoder is None
        else {
            "name": manifest.encoder.name,
            "location": manifest.encoder.location,
            "dimension": manifest.encoder.dimension,
            "fingerprint": manifest.encoder.fingerprint,
            "layers": manifest.encoder.layers,
            "dim": manifest.encoder.dim,
        },
        "passages": manifest.dense.rows if manifest.dense else None,
        "chunking": None
        if not manifest.dense or manifest.dense.chunk_size is None
        else {
            "size": manifest.dense.chunk_size,
            "overlap": manifest.dense.chunk_overlap,
        },
        "index": manifest.dense.index if manifest.dense else None,
        "sparse": None
        if manifest.sparse is None
        else {"model": manifest.sparse.name, "fingerprint": manifest.sparse.fingerprint},
        "multivector": None
        if manifest.multivector is None
        else {
            "model": manifest.multivector.name,
            "fingerprint": manifest.multivector.fingerprint,
            "dimension": manifest.multivector.dimension,
            "token_vectors": manifest.multivector.tokens,
            "token_index": manifest.multivector.token_index,
        },
        "bm25": None
        if manifest.lexical is None
        else {
            "k1": manifest.lexical.k1,
            "b": manifest.lexical.b,
            "stemmer": manifest.lexical.stemmer,
            "stopwords": manifest.lexical.stopwords,
            "language": manifest.lexical.language,
            "terms": manifest.lexical.terms.describe(),
        },
        "adapter": None if collection.adapter is None else collection.adapter.describe(),
        "fusion": manifest.fusion,
        # How `densekit tune` chose that fusion: data, metric, cross-validated score.
        "fusion_tuning": None
        if manifest.fusion_tuning is None
        else dataclasses.asdict(manifest.fusion_tuning),
        "size_bytes": sum(manifest.files.values()),
        "created": manifest.created,
        "source": manifest.source,
        "stats": manifest.stats,
        # The last `check` of this generation in this process (a server's background one).
        "integrity": None if integrity is None else integrity.summary(),
    }


def sharded_info(store: ShardedStore) -> dict[str, Any]:
    """:func:`collection_info` of a sharded collection: the shared settings, the whole
    collection's counts and sizes, and each shard's."""
    shards = [collection_info(shard) for shard in store.shards]
    integrity = latest_report(store.directory, store.shard_set.generation)
    first = shards[0]
    total = {key: sum(shard[key] or 0 for shard in shards) for key in ("documents", "deleted")}
    return {
        **first,
        **total,
        "directory": str(store.directory.resolve()),
        "passages": sum(shard["passages"] or 0 for shard in shards) if first["passages"] else None,
        "size_bytes": sum(shard["size_bytes"] for shard in shards),
        "multivector": first["multivector"]
        and {
            **first["multivector"],
            "token_vectors": sum(shard["multivector"]["token_vectors"] for shard in shards),
        },
        "created": store.shard_set.created,
        "source": store.shard_set.source,
        "stats": {},
        # The last `check` of this publication in this process (a server's background one).
        "integrity": None if integrity is None else integrity.summary(),
        "shards": [
            {
                "folder": shard.directory.name,
                "documents": info["documents"],
                "deleted": info["deleted"],
                "size_bytes": info["size_bytes"],
            }
            for shard, info in zip(store.shards, shards, strict=True)
        ],
        "routing": store.shard_set.routing,
    }
