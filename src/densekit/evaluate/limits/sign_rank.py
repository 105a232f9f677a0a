"""Can any d-dimensional embedding represent these qrels? Cheap bounds on the dimension a
relevance matrix needs for single-vector retrieval to return every query's relevant set as its
top k (k the query's own count of relevant documents).

- Lower bound: the LIMIT paper shows the row-wise order-preserving rank of a relevance matrix A
  is at least the sign-rank of 2A - 1 minus one, and Forster's theorem bounds the sign-rank of
  an m x n sign matrix M below by sqrt(m n) / ||M|| (its largest singular value). Sound, but
  weak for sparse qrels (close to 1).
- Upper bound: the smallest d at which free query and document vectors, optimised as in the
  free-embedding experiment, reproduce every query's top k exactly: an existence proof for that
  d. A failure at smaller d is the optimiser's, not a proof that none exists. d = the number of
  documents always suffices (one-hot documents), so the search stops there.

Only documents relevant to some query are columns: a document relevant to none needs at most
one dimension more (score it below every relevant one).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from densekit.errors import InputError
from densekit.evaluate.limits.free_embedding import FitResult, FitSettings, fit_relevance


@dataclass(frozen=True)
class Relevance:
    """A binary relevance matrix, as lists of column numbers per query."""

    rows: list[list[int]]
    queries: list[str]
    documents: list[str]

    @property
    def k_counts(self) -> dict[int, int]:
        """How many queries have each number of relevant documents."""
        return dict(sorted(Counter(len(row) for row in self.rows).items()))


def read_relevance(path: str | Path) -> Relevance:
    """The relevant (score > 0) pairs of a BEIR qrels file (query-id, corpus-id, score)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InputError(f"{path}: cannot read the qrels ({error.strerror})") from None
    relevant: dict[str, list[str]] = {}
    for number, line in enumerate(lines, 1):
        fields = line.split("\t")
        if number == 1 and fields[0].strip().lower() in ("query-id", "query_id", "qid"):
            continue
        if not line.strip():
            continue
        if len(fields) != 3:
            raise InputError(f"{path}:{number}: expected query-id, corpus-id, score (tabs)")
        try:
            score = float(fields[2])
        except ValueError:
            raise InputError(f"{path}:{number}: score {fields[2]!r} is not a number") from None
        if score > 0:
            relevant.setdefault(fields[0], []).append(fields[1])
    if not relevant:
        raise InputError(f"{path}: no relevant pairs (score > 0)")
    documents = sorted({document for found in relevant.values() for document in found})
    column = {document: number for number, document in enumerate(documents)}
    queries = sorted(relevant)
    rows = [sorted({column[d] for d in relevant[q]}) for q in queries]
    return Relevance(rows, queries, documents)


def forster_lower_bound(relevance: Relevance) -> int:
    """A dimension no single-vector embedding can go below (sign-rank bound minus one)."""
    m, n = len(relevance.rows), len(relevance.documents)
    return max(1, math.ceil(math.sqrt(m * n) / _sign_matrix_norm(relevance) - 1e-9) - 1)


DENSE_ENTRIES = 4_000_000  # up to this many, the sign matrix is formed and decomposed whole


def _sign_matrix_norm(relevance: Relevance) -> float:
    """The largest singular value of 2A - 1, A the relevance matrix."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.linalg import LinearOperator, svds

    m, n = len(relevance.rows), len(relevance.documents)
    pairs = [(q, d) for q, row in enumerate(relevance.rows) for d in row]
    positives = csr_matrix(
        (np.ones(len(pairs)), ([q for q, _ in pairs], [d for _, d in pairs])), shape=(m, n)
    )
    if m * n <= DENSE_ENTRIES or min(m, n) < 3:
        return float(np.linalg.norm(2 * positives.toarray() - 1, 2))

    # 2A - J with J all ones (rank one), applied as products: no m x n matrix in memory.
    def forward(x: np.ndarray) -> np.ndarray:
        x = x.reshape(n, -1)
        return 2 * (positives @ x) - np.broadcast_to(x.sum(axis=0), (m, x.shape[1]))

    def backward(y: np.ndarray) -> np.ndarray:
        y = y.reshape(m, -1)
        return 2 * (positives.T @ y) - np.broadcast_to(y.sum(axis=0), (n, y.shape[1]))

    operator = LinearOperator((m, n), matvec=forward, rmatvec=backward, dtype=np.float64)
    return float(svds(operator, k=1, return_singular_vectors=False, random_state=0)[0])


@dataclass
class DimensionBounds:
    lower: int  # Forster: no embedding of fewer dimensions represents the qrels
    upper: int  # this many suffice: fitted (``fitted``) or one-hot documents
    fitted: bool  # ``upper`` was reached by an exact fit, not by the one-hot construction
    failed: int | None  # the largest d the optimiser failed at (not a proof)
    tried: dict[int, FitResult] = field(default_factory=dict)


def dimension_bounds(
    relevance: Relevance,
    settings: FitSettings | None = None,
    device: str = "cpu",
    on_result: Callable[[int, FitResult], None] | None = None,
) -> DimensionBounds:
    """The bounds of the module's description: Forster's lower bound, and the smallest d (up
    to the number of documents) the optimiser fits, by doubling then bisecting."""
    n = len(relevance.documents)
    lower = forster_lower_bound(relevance)
    bounds = DimensionBounds(lower=lower, upper=n, fitted=False, failed=None)

    def fits(d: int) -> bool:
        result = fit_relevance(relevance.rows, n, d, settings, device)
        bounds.tried[d] = result
        if on_result is not None:
            on_result(d, result)
        return result.solved

    low, d = lower - 1, min(lower, n)  # low: the largest d known to fail (or to be too few)
    while not fits(d):
        low = d
        if d >= n:  # the optimiser found none; one-hot documents still need only n
            bounds.failed = low
            return bounds
        d = min(2 * d, n)
    high = d
    while high - low > 1:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle
    bounds.upper, bounds.fitted = high, True
    bounds.failed = low if low >= lower else None
    return bounds
