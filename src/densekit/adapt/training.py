"""Training a residual adapter (or a lexical bridge) on (query, positive) pairs of frozen
vectors.

The loss is a softmax over global negatives: each query's adapted vector against every corpus
vector (or a fresh uniform sample of them per step, plus the batch's positives), with the
query's other known positives masked out. The encoder never runs: everything is a matrix
product over cached vectors, so training takes seconds to minutes on a CPU.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from densekit.encode.adapters.lexsem import LexSemBridge, QueryTokens
from densekit.encode.adapters.residual import AdapterSpec, ResidualAdapter
from densekit.errors import InputError


@dataclass(frozen=True)
class AdapterTraining:
    """How an adapter learns. ``negatives`` None uses every corpus vector as a negative;
    a number samples that many per step."""

    epochs: int = 20
    batch: int = 64
    learning_rate: float = 1e-3
    temperature: float = 0.05
    negatives: int | None = None
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"adapter training: {name} must be a positive integer")
        if not self.learning_rate > 0 or not self.temperature > 0:
            raise InputError("adapter training: learning_rate and temperature must be positive")
        if self.negatives is not None and (
            isinstance(self.negatives, bool) or not isinstance(self.negatives, int)
        ):
            raise InputError("adapter training: negatives is a whole number (or None for all)")
        if self.negatives is not None and self.negatives < 1:
            raise InputError("adapter training: negatives must be positive (or None for all)")
        if self.weight_decay < 0 or self.seed < 0:
            raise InputError("adapter training: weight_decay and seed must be >= 0")


@dataclass(frozen=True)
class AdapterTrainingReport:
    pairs: int
    queries: int
    documents: int
    steps: int
    seconds: float
    loss_first_epoch: float
    loss_last_epoch: float
    spec: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)


def train_adapter(
    queries: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    documents: np.ndarray,
    spec: AdapterSpec | None = None,
    training: AdapterTraining | None = None,
) -> tuple[ResidualAdapter, AdapterTrainingReport]:
    """Fit an adapter so each query vector ranks its positives first among ``documents``.

    ``pairs`` holds (query row, document row) for every judged positive; a query with several
    positives contributes one row each, and its other positives are not counted as negatives.
    """
    import torch

    spec, training = spec or AdapterSpec(), training or AdapterTraining()
    query_tensor, rows, documents = _frozen(queries, pairs, documents)
    with torch.random.fork_rng():  # seeded weights, without touching the caller's RNG
        torch.manual_seed(training.seed)
        adapter = ResidualAdapter(spec, documents.shape[1])

    def adapted(batch_rows: np.ndarray) -> Any:
        return adapter.query_map(query_tensor[batch_rows])

    report = fit_query_map(
        adapted, adapter.parameters(), rows, documents, training, adapter.document_map
    )
    return adapter, dataclasses.replace(report, spec=spec.to_dict())


def train_lexsem(
    queries: np.ndarray,
    tokens: QueryTokens,
    pairs: Sequence[tuple[int, int]],
    documents: np.ndarray,
    bridge: LexSemBridge,
    training: AdapterTraining | None = None,
) -> AdapterTrainingReport:
    """Fit ``bridge`` (in place) on the same pairs and loss as an adapter: the query vectors,
    their tokens and the documents stay frozen."""

    training = training or AdapterTraining()
    query_tensor, rows, documents = _frozen(queries, pairs, documents)
    if len(tokens) != len(query_tensor):
        raise InputError(f"{len(query_tensor)} query vectors but {len(tokens)} token lists")

    def adapted(batch_rows: np.ndarray) -> Any:
        return bridge.modulate(query_tensor[batch_rows], tokens.take(batch_rows.tolist()))

    report = fit_query_map(adapted, bridge.parameters(), rows, documents, training)
    return dataclasses.replace(report, spec=bridge.spec.to_dict())


def fit_query_map(
    adapted: Callable[[np.ndarray], Any],
    parameters: list[Any],
    rows: np.ndarray,
    documents: np.ndarray,
    training: AdapterTraining,
    document_map: Any = None,
) -> AdapterTrainingReport:
    """The training loop shared by every learned query map: ``adapted(query rows)`` gives the
    mapped query vectors, ``document_map`` (if any) maps the documents too."""
    import torch

    generator = np.random.default_rng(training.seed)
    optimizer = torch.optim.AdamW(
        parameters, lr=training.learning_rate, weight_decay=training.weight_decay
    )
    document_tensor = torch.nn.functional.normalize(torch.from_numpy(documents), dim=-1)
    known = _positives_by_query(rows)
    started, steps, epoch_losses = time.perf_counter(), 0, []
    for _ in range(training.epochs):
        order = generator.permutation(len(rows))
        losses = []
        for start in range(0, len(order), training.batch):
            batch = rows[order[start : start + training.batch]]
            candidates = _candidates(batch, len(documents), training.negatives, generator)
            pool = document_tensor if len(candidates) == len(documents) else None
            if pool is None:
                pool = document_tensor[candidates]
            if document_map is not None:
                pool = torch.nn.functional.normalize(document_map(pool), dim=-1)
            mapped = torch.nn.functional.normalize(adapted(batch[:, 0]), dim=-1)
            loss = _loss(mapped, pool, batch, candidates, known, training.temperature)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            steps += 1
        epoch_losses.append(float(np.mean(losses)))
    return AdapterTrainingReport(
        pairs=len(rows),
        queries=len(np.unique(rows[:, 0])),
        documents=len(documents),
        steps=steps,
        seconds=round(time.perf_counter() - started, 2),
        loss_first_epoch=round(epoch_losses[0], 4),
        loss_last_epoch=round(epoch_losses[-1], 4),
        training=asdict(training),
    )


def _loss(
    queries: Any,
    pool: Any,
    batch: np.ndarray,
    candidates: np.ndarray,
    known: dict[int, set[int]],
    temperature: float,
) -> Any:
    """Softmax cross-entropy of each pair's positive among the candidate documents."""
    import torch

    logits = queries @ pool.T / temperature
    labels = torch.from_numpy(np.searchsorted(candidates, batch[:, 1]))  # candidates are sorted
    # A query's other positives are not negatives.
    mask = torch.zeros_like(logits, dtype=torch.bool)
    for i, (query, positive) in enumerate(batch):
        others = np.fromiter(known[int(query)] - {int(positive)}, dtype=np.int64)
        places = np.searchsorted(candidates, others)
        found = places[
            (places < len(candidates))
            & (candidates[np.minimum(places, len(candidates) - 1)] == others)
        ]
        mask[i, torch.from_numpy(found)] = True
    logits = logits.masked_fill(mask, float("-inf"))
    return torch.nn.functional.cross_entropy(logits, labels)


def _frozen(
    queries: np.ndarray, pairs: Sequence[tuple[int, int]], documents: np.ndarray
) -> tuple[Any, np.ndarray, np.ndarray]:
    """The unit query vectors as a tensor, the checked pairs, and the document vectors."""
    import torch

    queries = np.asarray(queries, dtype=np.float32)
    documents = np.asarray(documents, dtype=np.float32)
    rows = _checked_pairs(queries, pairs, documents)
    return torch.nn.functional.normalize(torch.from_numpy(queries), dim=-1), rows, documents


def _candidates(
    batch: np.ndarray, documents: int, negatives: int | None, generator: np.random.Generator
) -> np.ndarray:
    """Every document row, or a uniform sample of ``negatives`` plus the batch's positives."""
    if negatives is None or negatives >= documents:
        return np.arange(documents)
    sampled = generator.choice(documents, size=negatives, replace=False)
    return np.unique(np.concatenate([sampled, batch[:, 1]]))


def _positives_by_query(rows: np.ndarray) -> dict[int, set[int]]:
    known: dict[int, set[int]] = {}
    for query, document in rows:
        known.setdefault(int(query), set()).add(int(document))
    return known


def _checked_pairs(
    queries: np.ndarray, pairs: Sequence[tuple[int, int]], documents: np.ndarray
) -> np.ndarray:
    """The pairs as an (n, 2) integer array, after checking them and the vectors."""
    if queries.ndim != 2 or documents.ndim != 2:
        raise InputError("query and document vectors must be 2-D arrays (rows x dimensions)")
    if queries.shape[1] != documents.shape[1]:
        raise InputError(
            f"query vectors have {queries.shape[1]} dimensions and document vectors "
            f"{documents.shape[1]}; both sides must come from the same encoder"
        )
    for name, array in (("query", queries), ("document", documents)):
        if not np.isfinite(array).all():
            row = int(np.argwhere(~np.isfinite(array))[0][0])
            raise InputError(f"{name} vector {row} holds NaN or infinity")
    if len(pairs) == 0:
        raise InputError("no (query, positive) pairs to train on")
    try:
        given = np.asarray(pairs)
    except ValueError:
        given = np.empty(0)
    if given.ndim != 2 or given.shape[1] != 2 or not np.issubdtype(given.dtype, np.integer):
        raise InputError("pairs are (query row, document row) tuples of whole numbers")
    rows = given.astype(np.int64)
    bad = (rows[:, 0] < 0) | (rows[:, 0] >= len(queries)) | (rows[:, 1] < 0)
    bad |= rows[:, 1] >= len(documents)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"pair {i} {tuple(rows[i])} points outside the query or document rows")
    return rows
