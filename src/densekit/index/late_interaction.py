"""Multi-vector (late interaction) search: every document kept as its token vectors, a query
scored by MaxSim (ColBERT): the sum, over the query's token vectors, of each one's best
similarity with any of the document's token vectors.

Token vectors are unit length and stored as int8 (each component times 127, rounded): a
quarter of float32's bytes, each component within 0.004 of its value. A document's tokens are
rows ``offsets[d]:offsets[d + 1]`` of one matrix, memory-mapped from the collection.
Candidates come from a FAISS index over every token vector (each query token's nearest
document tokens, ColBERT's gather stage) or from another retriever; each candidate is then
scored exactly by MaxSim over its stored tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from densekit.errors import InputError
from densekit.index.vectors import tombstones

INT8_SCALE = 127.0
# Bound on the (query tokens x candidate tokens) similarity matrix held at once.
_SCORE_BUDGET_BYTES = 64 * 1024 * 1024


def quantise(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float vectors as int8 codes."""
    return np.clip(np.rint(np.asarray(vectors) * INT8_SCALE), -127, 127).astype(np.int8)


def dequantise(codes: np.ndarray) -> np.ndarray:
    return np.asarray(codes, dtype=np.float32) / INT8_SCALE


class TokenVectors:
    """Every document's token vectors: int8 ``codes`` (tokens x dim) and ``offsets``
    (documents + 1) marking where each document's rows start."""

    def __init__(self, codes: np.ndarray, offsets: np.ndarray) -> None:
        if codes.dtype != np.int8 or codes.ndim != 2:
            raise InputError("token vectors must be an int8 matrix (tokens x dimensions)")
        if len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(codes):
            raise InputError(f"token offsets must run from 0 to the {len(codes)} token rows")
        if (np.diff(offsets) < 1).any():  # MaxSim needs every document to have a token
            raise InputError("token offsets give a document no token vectors")
        self.codes = codes
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.documents = len(self.offsets) - 1
        self.dimension = int(codes.shape[1])

    @classmethod
    def from_documents(cls, documents: Sequence[np.ndarray]) -> TokenVectors:
        """From each document's float token vectors (unit length)."""
        lengths = [len(tokens) for tokens in documents]
        if any(length == 0 for length in lengths):
            raise InputError("every document needs at least one token vector")
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return cls(quantise(np.concatenate(documents)), offsets)

    def token_documents(self) -> np.ndarray:
        """The document row of every token row."""
        return np.repeat(np.arange(self.documents), np.diff(self.offsets))

    def maxsim(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """MaxSim of one query's token vectors (tokens x dim, float) with each document in
        ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.empty(len(rows), dtype=np.float32)
        query = np.ascontiguousarray(query, dtype=np.float32)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        budget = max(1, _SCORE_BUDGET_BYTES // (4 * max(1, len(query))))
        start = 0
        while start < len(rows):
            # As many documents as fit the budget (at least one).
            end = start + max(1, int(np.searchsorted(np.cumsum(lengths[start:]), budget)))
            batch = rows[start:end]
            spans = [np.arange(self.offsets[r], self.offsets[r + 1]) for r in batch]
            tokens = dequantise(self.codes[np.concatenate(spans)])
            similarity = query @ tokens.T  # (query tokens, tokens of the batch)
            starts = np.concatenate([[0], np.cumsum(lengths[start:end])[:-1]])
            best = np.maximum.reduceat(similarity, starts, axis=1)  # per document, per q token
            scores[start:end] = best.sum(axis=0)
            start = end
        return scores

    def save(self, folder: Path) -> dict[str, str]:
        """Write ``tokens.npy`` and ``token_offsets.npy`` into ``folder``; their names."""
        np.save(folder / "tokens.npy", self.codes)
        np.save(folder / "token_offsets.npy", self.offsets)
        return {"codes": "tokens.npy", "offsets": "token_offsets.npy"}

    @classmethod
    def load(cls, folder: Path) -> TokenVectors:
        """The token vectors of ``folder``, memory-mapped (read as searches need them)."""
        codes = np.load(folder / "tokens.npy", mmap_mode="r")
        return cls(codes, np.load(folder / "token_offsets.npy"))


class MultiVectorIndex:
    """MaxSim search over :class:`TokenVectors`, with candidates from a token-level FAISS
    index (``token_index``, over the dequantised token vectors) or given by the caller."""

    def __init__(
        self,
        tokens: TokenVectors,
        token_index: Any | None = None,
        deleted: np.ndarray | None = None,
    ) -> None:
        self.tokens = tokens
        self.token_index = token_index
        self.token_documents = tokens.token_documents()
        self.deleted, self.live_documents = tombstones(deleted, tokens.documents)

    @staticmethod
    def build_token_index(tokens: TokenVectors, spec: str = "Flat") -> Any:
        """A FAISS inner-product index of every token vector (``spec``: a factory string,
        e.g. ``IVF1024,SQ8`` for large collections; trained on the tokens themselves)."""
        import faiss

        vectors = dequantise(tokens.codes)
        index = faiss.index_factory(tokens.dimension, spec, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            index.train(vectors)
        index.add(vectors)
        return index

    def candidates(self, query: np.ndarray, per_token: int) -> np.ndarray:
        """The documents holding any of each query token's ``per_token`` nearest tokens."""
        if self.token_index is None:
            raise InputError("this multi-vector index has no token index: pass candidates")
        _, found = self.token_index.search(np.ascontiguousarray(query, np.float32), per_token)
        rows = np.unique(self.token_documents[found[found >= 0]])
        return rows[~self.deleted[rows]] if self.deleted is not None else rows

    def rank(
        self, query: np.ndarray, k: int, rows: np.ndarray | None = None, per_token: int = 32
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of ``rows`` (default: the token index's candidates) by exact MaxSim:
        (document rows, scores), best first."""
        if rows is None:
            rows = self.candidates(query, per_token)
        else:
            rows = np.asarray(rows, dtype=np.int64)
            if self.deleted is not None:
                rows = rows[~self.deleted[rows]]
        if len(rows) == 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        scores = self.tokens.maxsim(query, rows)
        order = np.argsort(-scores, kind="stable")[:k]
        return rows[order], scores[order]

    def search(
        self, queries: Sequence[np.ndarray], k: int, per_token: int = 32
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`rank` of each query's token vectors."""
        return [self.rank(query, k, per_token=per_token) for query in queries]
