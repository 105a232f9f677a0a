"""Embedding shards: .npy files of at most ``rows_per_shard`` rows, each committed atomically.

A shard is ``NNNNN.npy`` plus a sidecar ``NNNNN.json`` (row count, ids, and a digest of the
texts it encodes). The sidecar is renamed into place last, so a shard counts as written exactly
when its sidecar exists: an interrupted run leaves whole shards and can resume after them.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from densekit.errors import CollectionError
from densekit.files.durability import writing

DEFAULT_ROWS_PER_SHARD = 8192
STORAGE_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class ShardMeta:
    rows: int
    digest: str
    ids: list[str]


def shard_name(index: int) -> str:
    return f"{index:05d}.npy"


def read_committed(directory: Path, index: int) -> ShardMeta | None:
    """The sidecar of a committed shard, or ``None`` if shard ``index`` was never finished."""
    sidecar = directory / f"{index:05d}.json"
    vectors = directory / shard_name(index)
    if not (sidecar.is_file() and vectors.is_file()):
        return None
    try:
        return ShardMeta(**json.loads(sidecar.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError):
        return None


def commit_shard(
    directory: Path, index: int, vectors: np.ndarray, meta: ShardMeta, dtype: str = "float32"
) -> None:
    """Write vectors, then the sidecar, each durably under a temporary name and renamed."""
    directory.mkdir(parents=True, exist_ok=True)
    targets = [
        (directory / shard_name(index), lambda h: np.save(h, vectors.astype(dtype, copy=False))),
        (
            directory / f"{index:05d}.json",
            lambda h: h.write(json.dumps(asdict(meta)).encode("utf-8")),
        ),
    ]
    for target, write in targets:
        staging = target.with_name(f".{target.name}.tmp")
        try:
            with writing(target), staging.open("wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staging, target)
        except BaseException:
            staging.unlink(missing_ok=True)  # a full disk must not be made fuller
            raise


def remove_shards_from(directory: Path, first: int) -> None:
    """Drop shards ``first`` and later (left by an earlier, longer run) and staging files."""
    for path in directory.glob("*"):
        stem = path.name.split(".")[0]
        if path.name.startswith(".") or (stem.isdigit() and int(stem) >= first):
            path.unlink(missing_ok=True)


# CPython 3.11 before 3.11.8 can fail ("AST constructor recursion depth mismatch") when two
# threads parse at once, and numpy parses every .npy header with ast.literal_eval: opening
# collections (their shards, offsets and bm25s arrays) takes this lock.
NPY_OPEN_LOCK = threading.RLock()


def open_shards(paths: Sequence[Path], dimension: int) -> list[np.ndarray]:
    """Memory-map the shards, checking each is a float matrix of the recorded width."""
    with NPY_OPEN_LOCK:
        return _open_shards(paths, dimension)


def _open_shards(paths: Sequence[Path], dimension: int) -> list[np.ndarray]:
    shards = []
    for path in paths:
        try:
            shard = np.load(path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise CollectionError(f"{path}: unreadable embedding shard ({exc}); rebuild") from None
        if shard.ndim != 2 or shard.shape[1] != dimension or shard.dtype.name not in STORAGE_DTYPES:
            raise CollectionError(
                f"{path}: embedding shard has shape {shard.shape} and dtype {shard.dtype}, "
                f"expected (n, {dimension}) float32 or float16; rebuild the collection"
            )
        shards.append(shard)
    return shards
