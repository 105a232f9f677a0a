"""Documents and their metadata in SQLite, addressed by row (their position in the collection)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from densekit.corpus.document import Document, metadata_value
from densekit.errors import InputError
from densekit.files.durability import writing

_SCHEMA = """
CREATE TABLE documents (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    source TEXT NOT NULL
)
"""
_INSERT = "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)"


class DocumentWriter:
    """Append documents to a SQLite file; duplicate ids are errors naming both places.

    A new file starts at row 0. :meth:`extend` appends to an existing file (a copy made for a
    change, never a published one) from row ``first_row`` on.
    """

    def __init__(
        self, path: Path, batch_size: int = 2000, *, first_row: int = 0, create: bool = True
    ) -> None:
        self.path = path
        with writing(path, discard=True):
            self.connection = sqlite3.connect(path)
            # Unpublished files only: a crash discards the whole generation, so no journal.
            self.connection.execute("PRAGMA journal_mode=OFF")
            self.connection.execute("PRAGMA synchronous=OFF")
            if create:
                self.connection.execute(_SCHEMA)
        self.batch_size = batch_size
        self.first_row = first_row
        self.count = 0
        self._pending: list[tuple[int, str, str, str, str, str]] = []

    @classmethod
    def extend(cls, path: Path, first_row: int) -> DocumentWriter:
        return cls(path, first_row=first_row, create=False)

    def remove(self, rows: Sequence[int]) -> None:
        for start in range(0, len(rows), 500):
            part = [int(r) for r in rows[start : start + 500]]
            marks = ",".join("?" * len(part))
            self.connection.execute(f"DELETE FROM documents WHERE row IN ({marks})", part)

    def add(self, document: Document) -> None:
        # Made JSON-safe here too (NaN, bytes, dates), whoever built the document.
        values = {str(key): metadata_value(v) for key, v in document.metadata.items()}
        metadata = json.dumps(values, ensure_ascii=False, allow_nan=False)
        row = (
            self.first_row + self.count,
            document.id,
            document.title,
            document.text,
            metadata,
            document.source,
        )
        self._pending.append(row)
        self.count += 1
        if len(self._pending) >= self.batch_size:
            self._flush()

    def add_all(self, documents: Iterable[Document]) -> None:
        for document in documents:
            self.add(document)

    def close(self) -> None:
        self._flush()
        with writing(self.path, discard=True):
            self.connection.commit()
        self.connection.close()

    def abort(self) -> None:
        """Close without writing what is pending (the build is being abandoned)."""
        self._pending.clear()
        self.connection.close()

    def _flush(self) -> None:
        if not self._pending:
            return
        try:
            with writing(self.path, discard=True):
                self.connection.executemany(_INSERT, self._pending)
        except sqlite3.IntegrityError:
            self._raise_duplicate()
        self._pending.clear()

    def _raise_duplicate(self) -> None:
        # executemany may have stored part of the batch, so "first seen" is the lowest row.
        for row, doc_id, _, _, _, source in self._pending:
            first = self.connection.execute(
                "SELECT source FROM documents WHERE id = ? AND row < ? ORDER BY row LIMIT 1",
                (doc_id, row),
            ).fetchone()
            earlier = next((p[5] for p in self._pending if p[1] == doc_id and p[0] < row), None)
            if first is not None or earlier is not None:
                raise InputError(
                    f"{source}: duplicate document id {doc_id!r} (first seen at "
                    f"{first[0] if first else earlier}); ids must be unique"
                )
        raise InputError("duplicate document id in the corpus; ids must be unique")


class DocumentStore:
    """Read-only access to a collection's documents."""

    def __init__(self, path: Path) -> None:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        self.connection = sqlite3.connect(uri, uri=True, check_same_thread=False)

    def __len__(self) -> int:
        return int(self.connection.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def ids_by_row(self, rows: int) -> list[str | None]:
        """The id at each of ``rows`` document rows; ``None`` where a row was deleted."""
        ids: list[str | None] = [None] * rows
        for row, doc_id in self.connection.execute("SELECT row, id FROM documents"):
            ids[row] = doc_id
        return ids

    def live_rows(self) -> np.ndarray:
        """The rows that hold a document, ascending."""
        cursor = self.connection.execute("SELECT row FROM documents ORDER BY row")
        return np.fromiter((row for (row,) in cursor), dtype=np.int64)

    def rows_of(self, ids: Iterable[str]) -> dict[str, int]:
        """The row of each of ``ids`` that is in the collection (unknown ids are left out)."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, int] = {}
        for start in range(0, len(wanted), 500):
            part = wanted[start : start + 500]
            marks = ",".join("?" * len(part))
            query = f"SELECT id, row FROM documents WHERE id IN ({marks})"
            found.update(self.connection.execute(query, part).fetchall())
        return found

    def get_rows(self, rows: Sequence[int]) -> list[Document]:
        if not rows:
            return []
        found: dict[int, Document] = {}
        for start in range(0, len(rows), 500):
            part = [int(r) for r in rows[start : start + 500]]
            marks = ",".join("?" * len(part))
            query = (
                "SELECT row, id, title, text, metadata, source FROM documents "
                f"WHERE row IN ({marks})"
            )
            for row, doc_id, title, text, metadata, source in self.connection.execute(query, part):
                found[row] = Document(doc_id, text, title, json.loads(metadata), source)
        return [found[int(r)] for r in rows]

    def get(self, doc_id: str) -> Document | None:
        row = self.connection.execute(
            "SELECT id, title, text, metadata, source FROM documents WHERE id = ?", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        return Document(row[0], row[2], row[1], json.loads(row[3]), row[4])

    def iter_documents(self, batch_size: int = 1000) -> Iterator[Document]:
        cursor = self.connection.execute(
            "SELECT id, title, text, metadata, source FROM documents ORDER BY row"
        )
        while batch := cursor.fetchmany(batch_size):
            for doc_id, title, text, metadata, source in batch:
                yield Document(doc_id, text, title, json.loads(metadata), source)

    def close(self) -> None:
        self.connection.close()
