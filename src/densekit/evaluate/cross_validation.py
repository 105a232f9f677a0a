"""Choose one of several settings by K-fold cross-validation on per-query scores.

The scores are a matrix, one row per candidate setting and one column per query. Each fold's
choice is made on the other folds' queries and scored on the fold's own, so the mean of the
held-out scores estimates what choosing this way gives on queries it has not seen. Ties go to
the candidate listed first: callers list the setting they would rather keep first.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from densekit.errors import InputError


@dataclass(frozen=True)
class FoldResult:
    """One fold: the candidate chosen on the other folds, its score there and on this fold."""

    fold: int  # from 1
    queries: int
    choice: int  # a row of the score matrix
    train_score: float
    held_out_score: float


@dataclass(frozen=True)
class CrossValidation:
    folds: tuple[FoldResult, ...]
    mean: float  # of the held-out fold scores
    std: float  # their sample standard deviation


def query_folds(queries: int, folds: int, seed: int) -> list[list[int]]:
    """``folds`` disjoint groups of the column indices ``0 .. queries - 1``, shuffled by
    ``seed``, as even in size as they can be."""
    if folds < 2:
        raise InputError(
            f"folds must be at least 2, got {folds}: cross-validation holds one fold out at a time"
        )
    if queries < folds:
        raise InputError(f"{queries} queries cannot make {folds} folds; give fewer folds")
    order = list(range(queries))
    random.Random(seed).shuffle(order)
    return [sorted(order[number::folds]) for number in range(folds)]


def mean_scores(scores: np.ndarray, columns: Sequence[int]) -> list[float]:
    """Each candidate's mean over ``columns``, summed exactly: candidates with the same
    per-query scores tie exactly, whatever their order."""
    return [math.fsum(row) / len(columns) for row in scores[:, list(columns)].tolist()]


def best_candidate(scores: np.ndarray, columns: Sequence[int]) -> tuple[int, float]:
    """The candidate with the highest mean over ``columns`` (the first of those tied), and it."""
    means = mean_scores(scores, columns)
    best = max(range(len(means)), key=lambda row: (means[row], -row))
    return best, means[best]


def cross_validate(scores: np.ndarray, folds: Sequence[Sequence[int]]) -> CrossValidation:
    """Choose on all folds but one, score on that one, for each fold in turn."""
    if scores.ndim != 2 or scores.shape[0] == 0:
        raise InputError("cross-validation needs a matrix of candidates by queries")
    results = []
    for number, held_out in enumerate(folds, 1):
        held = set(held_out)
        rest = [column for column in range(scores.shape[1]) if column not in held]
        choice, train_score = best_candidate(scores, rest)
        held_out_score = mean_scores(scores[[choice]], held_out)[0]
        results.append(FoldResult(number, len(held_out), choice, train_score, held_out_score))
    held_scores = [result.held_out_score for result in results]
    spread = statistics.stdev(held_scores) if len(held_scores) > 1 else 0.0
    return CrossValidation(tuple(results), statistics.fmean(held_scores), spread)
