"""Embedding shards: float32 .npy files of at most ``rows_per_shard`` rows, read by memory map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError

DEFAULT_ROWS_PER_SHARD = 65_536


class ShardWriter:
    """Append blocks of vectors; a shard is written whole once it is full (or at ``close``)."""

    def __init__(
        self, directory: Path, dimension: int, rows_per_shard: int = DEFAULT_ROWS_PER_SHARD
    ):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dimension = dimension
        self.rows_per_shard = rows_per_shard
        self.paths: list[Path] = []
        self.rows = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0

    def append(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise ValueError(
                f"expected vectors of shape (n, {self.dimension}), got {vectors.shape}"
            )
        vectors = vectors.astype(np.float32, copy=False)
        while len(vectors):
            take = min(len(vectors), self.rows_per_shard - self._buffered)
            self._buffer.append(vectors[:take])
            self._buffered += take
            self.rows += take
            vectors = vectors[take:]
            if self._buffered == self.rows_per_shard:
                self._write_shard()

    def close(self) -> list[Path]:
        if self._buffered:
            self._write_shard()
        return self.paths

    def _write_shard(self) -> None:
        path = self.directory / f"{len(self.paths):05d}.npy"
        np.save(path, np.concatenate(self._buffer))
        self.paths.append(path)
        self._buffer, self._buffered = [], 0


def open_shards(paths: Sequence[Path], dimension: int) -> list[np.ndarray]:
    """Memory-map the shards, checking each is a float32 matrix of the recorded width."""
    shards = []
    for path in paths:
        try:
            shard = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise CollectionError(f"{path}: unreadable embedding shard ({exc}); rebuild") from None
        if shard.ndim != 2 or shard.shape[1] != dimension or shard.dtype != np.float32:
            raise CollectionError(
                f"{path}: embedding shard has shape {shard.shape} and dtype {shard.dtype}, "
                f"expected (n, {dimension}) float32; rebuild the collection"
            )
        shards.append(shard)
    return shards
