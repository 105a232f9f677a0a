"""Approximate dense search: candidates from a :class:`CodeIndex`, optionally rescored with the
full float vectors from the memory-mapped shards, grouped into documents.

With rescoring, only the codes live in RAM; the shortlist's float vectors are read from disk at
query time (bi-granular retrieval: coarse codes for recall, full vectors for precision).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from densekit.errors import CollectionError
from densekit.index.codes import CodeIndex, RowFilter
from densekit.index.flat import FlatIndex, top_k
from densekit.index.spec import IndexSpec, parse_spec
from densekit.index.vectors import PassageGroups, ShardedVectors

INDEX_FILE = "index.faiss"
_EXACT_BLOCK = 65_536
# A filtered search over at most this many allowed rows reads their vectors and scores them
# exactly: faster than a graph or list walk that skips almost every row, and never misses.
FILTERED_EXACT_ROWS = 20_000
_MOST_EF_SEARCH = 1024
_DIGEST_WINDOW = 1 << 20


class AnnIndex:
    """A dense index built from a spec other than exact ``flat``."""

    def __init__(
        self,
        spec: IndexSpec,
        codes: CodeIndex,
        vectors: ShardedVectors,
        groups: PassageGroups,
    ) -> None:
        self.index_spec = spec
        self.codes = codes
        self.vectors = vectors
        self.groups = groups
        self._live: RowFilter | None = None
        if groups.deleted_rows is not None and codes.can_filter:
            self._live = RowFilter(~groups.deleted_rows)
        self._last_among: tuple[np.ndarray, AnnIndex] | None = None

    @property
    def spec(self) -> str:
        return str(self.index_spec)

    @property
    def rows(self) -> int:
        return self.codes.rows

    @property
    def documents(self) -> int:
        return self.groups.documents

    @classmethod
    def build(
        cls, spec: IndexSpec | str, vectors: ShardedVectors, groups: PassageGroups
    ) -> AnnIndex:
        spec = parse_spec(spec) if isinstance(spec, str) else spec
        return cls(spec, CodeIndex.build(spec, vectors), vectors, groups)

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None, **params: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` documents per query: (document rows, scores); rows of -1 pad short lists.

        ``params`` override the spec's query-time settings (``efSearch``, ``nprobe``) and the
        rescore multiplier (``rescore``). ``allowed`` (a boolean per document row) limits the
        search to those documents: FAISS skips the others while it searches (IVF probes more
        lists, in proportion), and when they are few they are searched exactly instead.
        """
        if allowed is not None:
            among = self._among(allowed)
            if among.groups.live_rows <= max(
                FILTERED_EXACT_ROWS, 4 * k * among.groups.passages_per_document
            ):
                return self._exact.search(queries, k, allowed=allowed)
            return among._search(queries, k, params, widen=True)
        return self._search(queries, k, params)

    @cached_property
    def _exact(self) -> FlatIndex:
        """Exact search over the same vectors, for filters that allow only a few."""
        return FlatIndex.over(self.vectors, self.groups)

    def _among(self, allowed: np.ndarray) -> AnnIndex:
        """This index over the allowed documents only: the others count as deleted. The last
        read-only mask's is kept: a filter's mask is one array, searched again and again."""
        kept = self._last_among
        if kept is not None and kept[0] is allowed:
            return kept[1]
        excluded = ~allowed if self.groups.deleted is None else ~allowed | self.groups.deleted
        groups = PassageGroups(self.groups.rows, self.groups.offsets, excluded)
        among = AnnIndex(self.index_spec, self.codes, self.vectors, groups)
        if not allowed.flags.writeable:  # a mask that can change is never taken as the same
            self._last_among = (allowed, among)
        return among

    def _search(
        self, queries: np.ndarray, k: int, params: dict[str, int], widen: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        params = dict(params)
        k = max(0, min(k, self.groups.live_documents))
        if len(queries) == 0 or k == 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        multiplier = params.pop("rescore", self.index_spec.rescore)
        wanted = k * self.groups.passages_per_document * (multiplier or 1)
        if widen:
            params = self._widened(params)
        rows, scores = self._live_candidates(queries, wanted, params)
        if multiplier:
            scores = self._exact_scores(queries, rows)
        elif self.groups.row_document is None and self.groups.deleted is None:
            return rows, scores  # one passage per document, already ranked by FAISS
        return self.groups.top_documents(rows, scores, k)

    def _widened(self, params: dict[str, int]) -> dict[str, int]:
        """Settings that reach as many allowed rows as an unfiltered search reaches rows: IVF
        probes more lists, HNSW keeps a longer candidate list, in proportion to the filter."""
        share = max(self.groups.live_rows / max(1, self.rows), 1e-6)
        nlist = self.codes.inverted_lists
        if nlist is not None:
            nprobe = params.get("nprobe", int(self.index_spec.options.get("nprobe", 1)))  # FAISS's
            return {**params, "nprobe": min(nlist, int(np.ceil(nprobe / share)))}
        if "HNSW" in self.index_spec.base:
            ef = params.get("efSearch", int(self.index_spec.options.get("efSearch", 16)))
            return {**params, "efSearch": min(_MOST_EF_SEARCH, int(np.ceil(ef / share)))}
        return params

    def _live_candidates(
        self, queries: np.ndarray, wanted: int, params: dict[str, int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """FAISS's best ``wanted`` passage rows that are not tombstoned (-1 pads short lists).

        FAISS skips deleted rows during the search where it can. Flat PQ cannot: it is
        exhaustive, so there the search asks for more than ``wanted`` in proportion to the
        deleted share and widens until every query has ``wanted`` live rows.
        """
        deleted = self.groups.deleted_rows
        if deleted is None:
            return self.codes.search(queries, wanted, params)
        if self._live is not None:
            rows, scores = self.codes.search(queries, wanted, params, allowed=self._live)
            return self._complete_short_lists(queries, rows, scores)
        live_share = max(self.groups.live_rows / self.rows, 1e-3)
        n = min(self.rows, int(wanted / live_share * 1.2) + 8)
        while True:
            rows, scores = self.codes.search(queries, n, dict(params))
            found = rows >= 0
            dead = found & deleted[np.where(found, rows, 0)]
            rows = np.where(dead, -1, rows)
            scores = np.where(dead, -np.inf, scores).astype(np.float32)
            live = (rows >= 0).sum(axis=1)
            exhausted = found.sum(axis=1) < n  # nprobe/efSearch reached all they can
            if n >= self.rows or bool(np.all((live >= wanted) | exhausted)):
                return rows, scores
            n = min(self.rows, 2 * n)

    def _complete_short_lists(
        self, queries: np.ndarray, rows: np.ndarray, scores: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """When most rows are deleted, a filtered HNSW or IVF search can reach fewer live rows
        than asked for; those queries are answered exactly over the live rows instead."""
        short = (rows >= 0).sum(axis=1) < min(rows.shape[1], self.groups.live_rows)
        if short.any():
            rows, scores = rows.copy(), scores.copy()
            rows[short], scores[short] = self._exact_live(queries[short], rows.shape[1])
        return rows, scores

    def _exact_live(self, queries: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        live = np.flatnonzero(~self.groups.deleted_rows)  # type: ignore[operator]
        best_rows = np.full((len(queries), 0), -1, dtype=np.int64)
        best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        for start in range(0, len(live), _EXACT_BLOCK):
            block = live[start : start + _EXACT_BLOCK]
            block_scores = queries @ self.vectors.take(block).T
            candidates = np.concatenate([best_scores, block_scores], axis=1)
            candidate_rows = np.concatenate(
                [best_rows, np.broadcast_to(block, block_scores.shape)], axis=1
            )
            order, best_scores = top_k(candidates, n)
            best_rows = np.take_along_axis(candidate_rows, order, axis=1)
        padding = n - best_rows.shape[1]
        best_rows = np.pad(best_rows, ((0, 0), (0, padding)), constant_values=-1)
        best_scores = np.pad(best_scores, ((0, 0), (0, padding)), constant_values=-np.inf)
        return best_rows, best_scores.astype(np.float32)

    def _exact_scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        valid = rows >= 0
        candidates = self.vectors.take(np.where(valid, rows, 0))
        scores = np.einsum("qd,qnd->qn", queries, candidates)
        return np.where(valid, scores, -np.inf).astype(np.float32)

    @property
    def resident_bytes(self) -> int:
        return self.codes.resident_bytes

    def save(self, directory: Path) -> dict[str, Any]:
        """Write the index into ``directory``; returns what the manifest records of it."""
        return save_codes(self.codes, directory)

    @classmethod
    def load(
        cls,
        path: Path,
        spec: str,
        vectors: ShardedVectors,
        groups: PassageGroups,
        *,
        rows: int,
        digest: str,
    ) -> AnnIndex:
        """Open a saved index, refusing one that belongs to another build."""
        if file_digest(path) != digest:
            raise CollectionError(
                f"{path} is not the index this collection was built with (its content differs "
                "from the manifest's record); rebuild with densekit index ... --overwrite"
            )
        parsed = parse_spec(spec)
        index = cls(parsed, CodeIndex.load(path, parsed, vectors.dimension), vectors, groups)
        if index.rows != rows or rows != vectors.rows:
            raise CollectionError(
                f"{path} holds {index.rows} vectors, the collection {vectors.rows}; rebuild "
                "with densekit index ... --overwrite"
            )
        return index


def save_codes(codes: CodeIndex, directory: Path) -> dict[str, Any]:
    """Write ``codes`` as ``directory/index.faiss``; returns what the manifest records of it."""
    path = directory / INDEX_FILE
    codes.save(path)
    return {"file": INDEX_FILE, "rows": codes.rows, "digest": file_digest(path)}


def extend_saved_index(
    source: Path,
    spec: str,
    vectors: ShardedVectors,
    dimension: int,
    directory: Path,
    *,
    refill: bool = False,
) -> dict[str, Any]:
    """Add ``vectors`` to a copy of the index saved at ``source`` and save it into
    ``directory``: FAISS ``add`` on the trained index, no retraining and no rebuild. With
    ``refill``, the copy's rows are dropped first: its trained parts (IVF centroids, PQ
    codebooks) index ``vectors`` alone.

    The saved file is read afresh, so searches on the index already open are undisturbed.
    """
    codes = CodeIndex.load(source, parse_spec(spec), dimension)
    if refill:
        codes.index.reset()  # type: ignore[attr-defined]
    codes.add(vectors)
    return save_codes(codes, directory)


def file_digest(path: Path) -> str:
    """Size and the first and last MiB: tells builds apart without reading a large index."""
    size = path.stat().st_size
    digest = hashlib.sha256(json.dumps({"size": size}).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(_DIGEST_WINDOW))
        if size > _DIGEST_WINDOW:
            handle.seek(max(_DIGEST_WINDOW, size - _DIGEST_WINDOW), os.SEEK_SET)
            digest.update(handle.read(_DIGEST_WINDOW))
    return digest.hexdigest()[:32]
