"""The free-embedding experiment (Weller et al., "On the Theoretical Limitations of
Embedding-Based Retrieval"): can d-dimensional vectors, optimised directly, return every top-k
set of n documents?

No language model: every query and every document is a vector of free parameters. There is one
query per k-subset of the n documents (all C(n, k) of them), relevant to exactly that subset.
The vectors are optimised with Adam on a full-batch softmax over all documents (the mean over
every relevant pair of its log-probability, temperature 0.1, learning rate 0.01, every vector
renormalised after each step), the paper's protocol. A run succeeds once every query's top k
is exactly its relevant set (checked every 50 steps); it gives up when the loss has not fallen
by 1e-5 for 1,000 steps, or after 100,000 steps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from densekit.errors import InputError

# Bytes per query-document score held while a step runs: the scores, their softmax, its
# gradient and the top-k work space, in float32.
_BYTES_PER_SCORE = 4 * 4


@dataclass(frozen=True)
class FitSettings:
    """The optimisation of one (n, d, k) run; the defaults are the paper's."""

    learning_rate: float = 0.01
    temperature: float = 0.1
    max_steps: int = 100_000
    patience: int = 1_000  # steps without the loss falling by min_delta
    min_delta: float = 1e-5
    check_every: int = 50  # steps between checks of every query's top k
    seed: int = 42


@dataclass(frozen=True)
class FitResult:
    """One run: did the vectors reproduce every top-k set of n documents?"""

    n: int
    solved: bool
    accuracy: float  # the best share of relevant documents found in the top k, over the run
    steps: int
    loss: float
    seconds: float


Progress = Callable[[int, float, float], None]  # (step, loss, accuracy) at each check


def subsets(n: int, k: int) -> np.ndarray:
    """Every k-subset of range(n), one per row, in lexicographic order."""
    from itertools import combinations

    return np.array(list(combinations(range(n), k)), dtype=np.int64).reshape(-1, k)


def memory_needed(n: int, d: int, k: int) -> int:
    """Bytes one step of an (n, d, k) run holds at its peak: every query's score of every
    document, and the vectors with their gradients and Adam moments."""
    queries = math.comb(n, k)
    return queries * n * _BYTES_PER_SCORE + (queries + n) * d * 4 * 4 + queries * k * 8


def check_run(n: int, d: int, k: int, memory_bytes: int | None = None) -> None:
    """Refuse an (n, d, k) run that is ill-posed, or that cannot fit ``memory_bytes``."""
    if k < 1:
        raise InputError(f"--k {k}: give 1 or more relevant documents per query")
    if d < 1:
        raise InputError(f"dimension {d}: give 1 or more")
    if n <= k:
        raise InputError(f"n {n} with k {k}: there must be more documents than k")
    if memory_bytes is not None and memory_needed(n, d, k) > memory_bytes:
        raise InputError(
            f"n {n}, d {d}, k {k}: {math.comb(n, k):,} queries × {n:,} documents need "
            f"about {memory_needed(n, d, k) / 2**30:.1f} GiB per step, more than the "
            f"{memory_bytes / 2**30:.1f} GiB available; use a smaller d or k, or a machine "
            "(or GPU) with more memory"
        )


def fit(
    n: int,
    d: int,
    k: int,
    settings: FitSettings | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> FitResult:
    """Optimise free query and document vectors of ``d`` dimensions for every k-subset of
    ``n`` documents (see the module's description)."""
    check_run(n, d, k)
    return fit_relevance(subsets(n, k), n, d, settings, device, progress)


def fit_relevance(
    relevant: Sequence[Sequence[int]] | np.ndarray,
    n: int,
    d: int,
    settings: FitSettings | None = None,
    device: str = "cpu",
    progress: Progress | None = None,
) -> FitResult:
    """Optimise free vectors of ``d`` dimensions for queries whose relevant documents (of
    ``n``) are ``relevant[q]`` (a queries x k array when every k is the same): success once
    each query's top k, k its own count, is exactly them."""
    import torch

    settings = settings or FitSettings()
    started = time.perf_counter()
    generator = torch.Generator().manual_seed(settings.seed)
    indices, valid = (torch.from_numpy(part).to(device) for part in _padded(relevant))
    counts = valid.sum(dim=1)
    weights = valid.float() / valid.sum()
    queries = _unit(torch.randn(len(relevant), d, generator=generator)).to(device)
    documents = _unit(torch.randn(n, d, generator=generator)).to(device)
    queries.requires_grad_(True)
    documents.requires_grad_(True)
    optimiser = torch.optim.Adam([queries, documents], lr=settings.learning_rate)
    best_loss, stale, best_accuracy, step, loss = math.inf, 0, 0.0, 0, math.inf
    solved = False
    while step < settings.max_steps:
        scores = queries @ documents.T / settings.temperature
        # The mean over every relevant pair of its log-probability (the paper's InfoNCE).
        value = -(torch.log_softmax(scores, dim=1).gather(1, indices) * weights).sum()
        optimiser.zero_grad(set_to_none=True)
        value.backward()
        optimiser.step()
        with torch.no_grad():  # the paper keeps every vector on the unit sphere
            queries.copy_(_unit(queries))
            documents.copy_(_unit(documents))
        step, loss = step + 1, float(value.detach())
        if loss < best_loss - settings.min_delta:
            best_loss, stale = loss, 0
        else:
            stale += 1
        giving_up = stale >= settings.patience or step == settings.max_steps
        if step % settings.check_every == 0 or step == 1 or giving_up:
            with torch.no_grad():
                accuracy = top_k_accuracy(queries @ documents.T, indices, valid, counts)
            best_accuracy = max(best_accuracy, accuracy)
            if progress is not None:
                progress(step, loss, accuracy)
            if accuracy >= 1.0:
                solved = True
                break
        if giving_up:
            break
    return FitResult(
        n=n,
        solved=solved,
        accuracy=round(best_accuracy, 6),
        steps=step,
        loss=round(loss, 6),
        seconds=round(time.perf_counter() - started, 2),
    )


def _padded(relevant: Sequence[Sequence[int]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices, valid): each query's relevant documents padded to the widest query's count,
    ``valid`` marking the real entries."""
    if isinstance(relevant, np.ndarray):
        return relevant.astype(np.int64), np.ones(relevant.shape, dtype=bool)
    widest = max(len(row) for row in relevant)
    indices = np.zeros((len(relevant), widest), dtype=np.int64)
    valid = np.zeros((len(relevant), widest), dtype=bool)
    for number, row in enumerate(relevant):
        indices[number, : len(row)] = row
        valid[number, : len(row)] = True
    return indices, valid


def top_k_accuracy(scores: Any, indices: Any, valid: Any, counts: Any) -> float:
    """The share of relevant documents (``indices`` where ``valid``) scoring above their
    query's (k+1)-th best score, k its count of relevant documents (1.0: every query's top k
    is exactly its relevant set, no other document tied with one of them)."""
    import torch

    documents = scores.shape[1]
    top = scores.topk(min(indices.shape[1] + 1, documents), dim=1).values
    following = top.gather(1, counts.clamp(max=top.shape[1] - 1).unsqueeze(1))
    # A query relevant to every document has no (k+1)-th: nothing to beat.
    following = torch.where((counts >= documents).unsqueeze(1), float("-inf"), following)
    found = (scores.gather(1, indices) > following) & valid
    return float(found.sum() / valid.sum())


def _unit(vectors: Any) -> Any:
    return vectors / vectors.norm(dim=1, keepdim=True)
