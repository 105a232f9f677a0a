"""Building a collection on document vectors made elsewhere (`densekit index --vectors`)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from densekit.encode import Encoder
from densekit.errors import InputError
from densekit.files.shards import ShardMeta, commit_shard, remove_shards_from, shard_name
from densekit.files.vectors import VectorTable
from densekit.store.documents import DocumentStore
from densekit.store.manifest import EncoderInfo

PRECOMPUTED = "precomputed"


def vectors_fingerprint(table: VectorTable) -> str:
    """A digest of the vectors and their ids: what a model fingerprint is for encoded ones."""
    digest = hashlib.sha256(np.ascontiguousarray(table.vectors).tobytes())
    digest.update("\n".join(table.ids or []).encode("utf-8"))
    return digest.hexdigest()[:32]


def given_encoder_info(table: VectorTable, encoder: Encoder | None) -> EncoderInfo:
    """The model named for the vectors, or a stand-in that only precomputed queries match."""
    if encoder is not None:
        return EncoderInfo.of(encoder)
    return EncoderInfo(
        name=PRECOMPUTED,
        location=str(Path(table.source).resolve()),
        fingerprint=vectors_fingerprint(table),
        dimension=table.dimension,
        max_tokens=0,
        backend=PRECOMPUTED,
    )


def store_given_vectors(
    store: DocumentStore, table: VectorTable, directory: Path, rows_per_shard: int, dtype: str
) -> list[Path]:
    """Write the stored documents' vectors, in row order, as shards; every document needs
    exactly one vector and every vector a document. Vectors are normalised to unit length."""
    documents = store.ids_by_row(len(store))
    rows = _rows_for(table, [d for d in documents if d is not None])
    remove_shards_from(directory, 0)
    paths = []
    for index, start in enumerate(range(0, len(rows), rows_per_shard)):
        picked = rows[start : start + rows_per_shard]
        vectors = table.vectors[picked]
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = [documents[i] or "" for i in range(start, start + len(picked))]
        meta = ShardMeta(rows=len(picked), digest="given", ids=ids)
        commit_shard(directory, index, vectors, meta, dtype)
        paths.append(directory / shard_name(index))
    return paths


def _rows_for(table: VectorTable, documents: list[str]) -> np.ndarray:
    if table.ids is None:
        if len(table.vectors) != len(documents):
            raise InputError(
                f"{table.source}: {len(table.vectors)} vectors for {len(documents)} documents; "
                "without ids the rows must be the corpus' documents in order (or give "
                "--vector-ids)"
            )
        return np.arange(len(documents))
    rows = table.by_id()
    missing = [d for d in documents if d not in rows]
    if missing:
        raise InputError(
            f"{table.source}: no vector for {len(missing)} of {len(documents)} documents "
            f"(e.g. {', '.join(repr(d) for d in missing[:3])}); give one per document id"
        )
    known = set(documents)
    extra = [i for i in rows if i not in known]
    if extra:
        raise InputError(
            f"{table.source}: {len(extra)} vectors have ids that are not documents of the "
            f"corpus (e.g. {', '.join(repr(i) for i in extra[:3])}); documents skipped as "
            "empty have no row, so drop their vectors"
        )
    return np.asarray([rows[d] for d in documents], dtype=np.int64)
