"""The folder `densekit encode` writes: ``NNNNN.npy`` shards with ``NNNNN.json`` sidecars (their
passage ids) and, once complete, ``embeddings.json`` (and ``vectors.parquet`` when asked)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError
from densekit.files.shards import read_committed

EMBEDDINGS_MANIFEST = "embeddings.json"
PARQUET_FILE = "vectors.parquet"


def load_embeddings(directory: str | Path) -> tuple[list[str], np.ndarray]:
    """All passage ids and vectors of a finished `densekit encode` directory (in memory)."""
    directory = Path(directory)
    path = directory / EMBEDDINGS_MANIFEST
    if not path.is_file():
        raise CollectionError(
            f"{directory}: no {EMBEDDINGS_MANIFEST}; the encoding is unfinished or this is not "
            "a densekit encode directory (rerun densekit encode to finish it)"
        )
    manifest = json.loads(path.read_text(encoding="utf-8"))
    ids: list[str] = []
    for index in range(len(manifest["shards"])):
        meta = read_committed(directory, index)
        if meta is None:
            raise CollectionError(f"{directory}: shard {index} is missing; rerun densekit encode")
        ids.extend(meta.ids)
    vectors = np.concatenate([np.load(directory / name) for name in manifest["shards"]])
    return ids, vectors
