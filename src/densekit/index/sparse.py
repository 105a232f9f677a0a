"""An inverted index of learned sparse vectors: for each vocabulary term, the documents that
weigh it and by how much (a term × document CSR matrix, memory-mapped from disk).

A query touches only the posting lists of its own non-zero terms and accumulates scores over
documents, so no vocabulary-wide dense vector is ever built at query time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix

from densekit.errors import CollectionError
from densekit.index.flat import top_k

_ARRAYS = ("data", "indices", "indptr")
_META = "sparse.json"


class SparseIndex:
    """Term-major postings over document rows; ``deleted`` (a boolean per row) never ranks."""

    def __init__(self, postings: csr_matrix, deleted: np.ndarray | None = None) -> None:
        self.postings = postings  # terms × document rows
        self.deleted = deleted if deleted is not None and deleted.any() else None

    @classmethod
    def from_documents(cls, vectors: csr_matrix) -> SparseIndex:
        """From document vectors (documents × terms)."""
        return cls(csr_matrix(vectors.T, dtype=np.float32))

    @property
    def documents(self) -> int:
        return int(self.postings.shape[1])

    @property
    def vocabulary(self) -> int:
        return int(self.postings.shape[0])

    def document_vectors(self) -> csr_matrix:
        """The documents × terms matrix again (for appending and compaction)."""
        return csr_matrix(self.postings.T, dtype=np.float32)

    def document_rows(self, rows: np.ndarray) -> csr_matrix:
        """The vectors (documents × terms) of the documents at ``rows``, in that order."""
        return csr_matrix(self.postings[:, np.asarray(rows, dtype=np.int64)].T, dtype=np.float32)

    def search(
        self, queries: csr_matrix, k: int, allowed: np.ndarray | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Top ``k`` document rows per query by sparse dot product; zero scores are left out.
        ``allowed`` (a boolean per document row): only those documents rank."""
        data, indices, indptr = self.postings.data, self.postings.indices, self.postings.indptr
        excluded = self.deleted
        if allowed is not None:
            excluded = ~allowed if excluded is None else excluded | ~allowed
        results = []
        for q in range(queries.shape[0]):
            start, end = queries.indptr[q], queries.indptr[q + 1]
            scores = np.zeros(self.documents, dtype=np.float32)
            for term, weight in zip(
                queries.indices[start:end], queries.data[start:end], strict=True
            ):
                lo, hi = indptr[term], indptr[term + 1]
                scores[indices[lo:hi]] += weight * data[lo:hi]
            if excluded is not None:
                scores[excluded] = 0.0
            rows, best = top_k(scores[None, :], k)
            keep = best[0] > 0
            results.append((rows[0][keep].astype(np.int64), best[0][keep]))
        return results

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name in _ARRAYS:
            np.save(directory / f"{name}.npy", getattr(self.postings, name))
        meta = {"terms": self.vocabulary, "documents": self.documents}
        (directory / _META).write_text(json.dumps(meta), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, deleted: np.ndarray | None = None) -> SparseIndex:
        try:
            meta = json.loads((directory / _META).read_text(encoding="utf-8"))
            arrays = [np.load(directory / f"{name}.npy", mmap_mode="r") for name in _ARRAYS]
            postings = csr_matrix(
                tuple(arrays), shape=(meta["terms"], meta["documents"]), copy=False
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CollectionError(
                f"{directory}: unreadable sparse index ({exc}); rebuild the collection"
            ) from None
        return cls(postings, deleted)
