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

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from densekit.errors import InputError
from densekit.index.vectors import tombstones

INT8_SCALE = 127.0
# Bound on the (query tokens x candidate tokens) similarity matrix held at once.
_SCORE_BUDGET_BYTES = 64 * 1024 * 1024
TOKENS_FILE = "tokens.npy"
OFFSETS_FILE = "token_offsets.npy"
TOKEN_INDEX_FILE = "token_index.faiss"
# Below this many token vectors the token index is exhaustive (8-bit codes, no clustering).
_EXHAUSTIVE_TOKENS = 100_000
# Inverted lists an IVF token index probes per query token unless a search says otherwise.
DEFAULT_NPROBE = 16


# The token index gathers candidates by token, not document: it has no document mask to apply.
NO_MULTIVECTOR_FILTERS = (
    "filters do not apply to multivector (late-interaction) retrieval; filter a dense, bm25 "
    "or splade first stage and rerank it with the multivector model"
)


def token_search_settings(params: Mapping[str, int], k: int) -> tuple[int, int | None]:
    """(per_token, nprobe) of a search for the top ``k`` with ``params``: nearest tokens
    gathered per query token (default 32, at least k) and inverted lists read per token."""
    return max(params.get("per_token", 32), k), params.get("nprobe")


def default_token_index(tokens: int) -> str:
    """The FAISS factory string for ``tokens`` token vectors: exhaustive 8-bit codes for a
    small collection; inverted lists (about the square root of the count, clustered once at
    build time) over 8-bit codes beyond, so a query token reads a few lists, not every token."""
    if tokens < _EXHAUSTIVE_TOKENS:
        return "SQ8"
    lists = 2 ** round(np.log2(np.sqrt(tokens)))
    return f"IVF{lists},SQ8"


def quantise(vectors: np.ndarray) -> np.ndarray:
    """Unit-length float vectors as int8 codes."""
    return np.clip(np.rint(np.asarray(vectors) * INT8_SCALE), -127, 127).astype(np.int8)


def dequantise(codes: np.ndarray) -> np.ndarray:
    if codes.dtype == np.float32:  # decoded already
        return codes
    return np.asarray(codes, dtype=np.float32) / INT8_SCALE


class TokenVectors:
    """Every document's token vectors: int8 ``codes`` (tokens x dim) and ``offsets``
    (documents + 1) marking where each document's rows start."""

    def __init__(self, codes: np.ndarray, offsets: np.ndarray) -> None:
        # float32: token vectors decoded once and kept in memory (see dequantised).
        if codes.dtype not in (np.int8, np.float32) or codes.ndim != 2:
            raise InputError(
                "token vectors must be an int8 (or decoded float32) matrix (tokens x dimensions)"
            )
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
        if any(len(tokens) == 0 for tokens in documents):
            raise InputError("every document needs at least one token vector")
        return cls.from_codes([quantise(tokens) for tokens in documents], documents[0].shape[1])

    @classmethod
    def from_codes(cls, documents: Sequence[np.ndarray], dimension: int) -> TokenVectors:
        """From each document's int8 codes (``dimension`` wide; no documents is allowed)."""
        lengths = [len(codes) for codes in documents]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        empty = np.empty((0, dimension), np.int8)
        return cls(np.concatenate([empty, *documents]).astype(np.int8), offsets)

    def take(self, rows: np.ndarray) -> TokenVectors:
        """The token vectors of the documents ``rows``, in that order (compaction)."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        codes = self.codes[self._token_rows(rows, lengths)]
        return TokenVectors(np.asarray(codes), np.concatenate([[0], np.cumsum(lengths)]))

    def dequantised(self) -> TokenVectors:
        """These token vectors decoded to float32 (four times the memory), so a matrix that is
        scored again and again (the reference documents) is decoded once."""
        return TokenVectors(dequantise(self.codes), self.offsets)

    def _token_rows(self, rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The token rows of documents ``rows`` (of ``lengths`` tokens), in order."""
        starts = np.cumsum(lengths) - lengths  # each document's first place in the result
        return np.arange(int(lengths.sum())) + np.repeat(self.offsets[rows] - starts, lengths)

    def appended(self, other: TokenVectors) -> TokenVectors:
        """These documents' token vectors, then ``other``'s as new rows."""
        return TokenVectors(
            np.concatenate([np.asarray(self.codes), other.codes]),
            np.concatenate([self.offsets, self.offsets[-1] + other.offsets[1:]]),
        )

    def documents_of(self, token_rows: np.ndarray) -> np.ndarray:
        """The document row of each of ``token_rows``."""
        return np.searchsorted(self.offsets, token_rows, side="right") - 1

    def maxsim(self, query: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """MaxSim of one query's token vectors (tokens x dim, float) with each document in
        ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        scores = np.empty(len(rows), dtype=np.float32)
        query = np.ascontiguousarray(query, dtype=np.float32)
        coded = self.codes.dtype == np.int8
        if coded:  # scale the query, not every token: one pass over the codes fewer
            query = query / INT8_SCALE
        lengths = self.offsets[rows + 1] - self.offsets[rows]
        # Per token of the batch: its similarity with every query token and its float copy.
        budget = max(1, _SCORE_BUDGET_BYTES // (4 * (len(query) + self.dimension)))
        start = 0
        while start < len(rows):
            # As many documents as fit the budget (at least one).
            end = start + max(1, int(np.searchsorted(np.cumsum(lengths[start:]), budget)))
            tokens = self.codes[self._token_rows(rows[start:end], lengths[start:end])]
            if coded:
                tokens = tokens.astype(np.float32)
            similarity = query @ tokens.T  # (query tokens, tokens of the batch)
            starts = np.concatenate([[0], np.cumsum(lengths[start:end])[:-1]])
            best = np.maximum.reduceat(similarity, starts, axis=1)  # per document, per q token
            scores[start:end] = best.sum(axis=0)
            start = end
        return scores

    def save(self, folder: Path) -> None:
        """Write the codes and offsets into ``folder``."""
        np.save(folder / TOKENS_FILE, self.codes)
        np.save(folder / OFFSETS_FILE, self.offsets)

    @classmethod
    def load(cls, folder: Path) -> TokenVectors:
        """The token vectors of ``folder``, memory-mapped (read as searches need them)."""
        codes = np.load(folder / TOKENS_FILE, mmap_mode="r")
        return cls(codes, np.load(folder / OFFSETS_FILE))


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
        self.deleted, self.live_documents = tombstones(deleted, tokens.documents)

    @staticmethod
    def build_token_index(tokens: TokenVectors, spec: str | None = None) -> Any:
        """A FAISS inner-product index of every token vector (``spec``: a factory string;
        default :func:`default_token_index`), trained on a sample of the tokens themselves."""
        import faiss

        spec = spec or default_token_index(len(tokens.codes))
        index = faiss.index_factory(tokens.dimension, spec, faiss.METRIC_INNER_PRODUCT)
        if not index.is_trained:
            ivf = faiss.try_extract_index_ivf(index)
            # Enough tokens per list for k-means (FAISS wants 39 or more; 64 is its comfort).
            wanted = max(_TRAINING_TOKENS, 64 * ivf.nlist) if ivf is not None else _TRAINING_TOKENS
            sample = np.random.default_rng(0).permutation(len(tokens.codes))[:wanted]
            index.train(dequantise(tokens.codes[np.sort(sample)]))
        _add_tokens(index, tokens.codes)
        return index

    def save(self, folder: Path) -> None:
        """Write the token vectors and the token index into ``folder``."""
        import faiss

        self.tokens.save(folder)
        faiss.write_index(self.token_index, str(folder / TOKEN_INDEX_FILE))

    @classmethod
    def load(cls, folder: Path, deleted: np.ndarray | None = None) -> MultiVectorIndex:
        """The index saved in ``folder``, token vectors and inverted lists memory-mapped."""
        import faiss

        tokens = TokenVectors.load(folder)
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
        token_index = faiss.read_index(str(folder / TOKEN_INDEX_FILE), flags)
        if token_index.ntotal != len(tokens.codes):
            raise InputError(
                f"{folder}: the token index holds {token_index.ntotal} vectors, the token "
                f"matrix {len(tokens.codes)}"
            )
        return cls(tokens, token_index, deleted)

    def candidates(
        self, query: np.ndarray, per_token: int, nprobe: int | None = None
    ) -> np.ndarray:
        """The documents holding any of each query token's ``per_token`` nearest tokens
        (an inverted-list index reads ``nprobe`` lists per query token)."""
        import faiss

        if self.token_index is None:
            raise InputError("this multi-vector index has no token index: pass candidates")
        params = None
        if faiss.try_extract_index_ivf(self.token_index) is not None:
            params = faiss.SearchParametersIVF(nprobe=nprobe or DEFAULT_NPROBE)
        query = np.ascontiguousarray(query, np.float32)
        _, found = self.token_index.search(query, per_token, params=params)
        rows = np.unique(self.tokens.documents_of(found[found >= 0]))
        return rows[~self.deleted[rows]] if self.deleted is not None else rows

    def rank(
        self,
        query: np.ndarray,
        k: int,
        rows: np.ndarray | None = None,
        per_token: int = 32,
        nprobe: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best of ``rows`` (default: the token index's candidates) by exact MaxSim:
        (document rows, scores), best first."""
        if rows is None:
            rows = self.candidates(query, per_token, nprobe)
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
        self,
        queries: Sequence[np.ndarray],
        k: int,
        per_token: int = 32,
        nprobe: int | None = None,
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`rank` of each query's token vectors."""
        return [self.rank(query, k, per_token=per_token, nprobe=nprobe) for query in queries]


# Tokens a token index's clustering learns from (FAISS samples 256 per list at most anyway).
_TRAINING_TOKENS = 262_144
_ADD_BATCH = 262_144


def _add_tokens(index: Any, codes: np.ndarray) -> None:
    """Add int8 ``codes`` to a FAISS index a slice at a time: float copies of every token of
    a large collection at once would be four times the codes' size."""
    for start in range(0, len(codes), _ADD_BATCH):
        index.add(dequantise(codes[start : start + _ADD_BATCH]))


def extend_token_index(
    source: Path, codes: np.ndarray, folder: Path, *, refill: bool = False
) -> None:
    """Add ``codes`` to a copy of the token index saved at ``source``, written into
    ``folder``: trained parts kept, no reclustering (the index open for searches is untouched).
    With ``refill``, the copy's tokens are dropped first (compaction)."""
    import faiss

    index = faiss.read_index(str(source))
    if refill:
        index.reset()
    _add_tokens(index, codes)
    faiss.write_index(index, str(folder / TOKEN_INDEX_FILE))
