"""A persistent cache of document vectors keyed by (encoder fingerprint, text digest).

Rebuilding a collection with other settings, or re-indexing a corpus in which a few documents
changed, re-encodes only texts the cache has not seen with that exact model and settings.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from densekit.encode.base import Encoder

CACHE_ENV = "DENSEKIT_CACHE_DIR"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "densekit" / "embeddings"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def stored_dimension(directory: Path, fingerprint: str) -> int | None:
    """The width of the vectors cached for ``fingerprint``, or None when it has none yet."""
    path = directory / f"{fingerprint}.sqlite"
    if not path.is_file():
        return None
    try:
        with closing(sqlite3.connect(path, timeout=60)) as connection:
            row = connection.execute("SELECT length(vector) FROM vectors LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return int(row[0]) // 4 if row and row[0] else None


def cache_name(encoder: Encoder) -> str:
    """The cache an encoder's vectors go to: its fingerprint, which is the model's in any
    precision, and the precision when it is half, so an fp32 build never takes fp16 or bf16
    vectors for its own."""
    precision = getattr(encoder, "precision", "fp32")
    return encoder.fingerprint + (f"-{precision}" if precision in ("fp16", "bf16") else "")


class EmbeddingCache:
    """One SQLite file per encoder fingerprint; vectors stored as float32 bytes."""

    def __init__(self, directory: Path, fingerprint: str, dimension: int) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{fingerprint}.sqlite"
        self.dimension = dimension
        self.connection = sqlite3.connect(self.path, timeout=60)
        self.connection.execute("PRAGMA journal_mode=WAL")
        self.connection.execute(
            "CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL) "
            "WITHOUT ROWID"
        )

    def get_many(self, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Vectors found for ``texts``, by position."""
        keys = [text_key(text) for text in texts]
        positions: dict[bytes, list[int]] = {}
        for position, key in enumerate(keys):
            positions.setdefault(key, []).append(position)
        found: dict[int, np.ndarray] = {}
        unique = list(positions)
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            query = f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})"
            for key, blob in self.connection.execute(query, part):
                vector = np.frombuffer(blob, dtype=np.float32)
                if len(vector) == self.dimension:
                    for position in positions[key]:
                        found[position] = vector
        return found

    def put_many(self, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [
            (text_key(text), np.ascontiguousarray(vector, dtype=np.float32).tobytes())
            for text, vector in zip(texts, vectors, strict=True)
        ]
        with self.connection:
            self.connection.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)

    def close(self) -> None:
        self.connection.close()
