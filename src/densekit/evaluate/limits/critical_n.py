"""The critical n of a dimension: the most documents whose every top-k set free d-dimensional
vectors can reproduce (:mod:`densekit.evaluate.limits.free_embedding`), found as the paper
finds it: gallop from a first guess (n doubles its step while runs succeed, or falls while they
fail), then bisect between the last success and the first failure."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from densekit.evaluate.limits.free_embedding import FitResult

# The paper's cubic fit of its measured critical n (k = 2): n = a + b d + c d^2 + e d^3.
PAPER_FIT = (-10.5322, 4.0309, 0.0520, 0.0037)


def paper_critical_n(d: float) -> float:
    """The critical n the paper's fit gives for dimension ``d`` (k = 2)."""
    return float(sum(coefficient * d**power for power, coefficient in enumerate(PAPER_FIT)))


def find_critical_n(
    run: Callable[[int], FitResult],
    start: int,
    known: dict[int, FitResult] | None = None,
    smallest: int = 3,
) -> int | None:
    """The largest n whose run succeeds, between the first success and failure found from
    ``start``; ``known`` holds runs done already (an interrupted search resumes from them) and
    gains every new one. None when even ``smallest`` fails."""
    tried = known if known is not None else {}

    def solved(n: int) -> bool:
        if n not in tried:
            tried[n] = run(n)
        return tried[n].solved

    n = max(start, smallest)
    step = 1
    if solved(n):
        low = n
        while solved(low + step):
            low, step = low + step, step * 2
        high = low + step
    else:
        high = n
        while True:
            candidate = max(high - step, smallest)
            if solved(candidate):
                low = candidate
                break
            if candidate == smallest:
                return None
            high, step = candidate, step * 2
    while high - low > 1:  # low succeeded, high failed
        middle = (low + high) // 2
        if solved(middle):
            low = middle
        else:
            high = middle
    return low


def cubic_fit(critical: dict[int, int]) -> list[float] | None:
    """Coefficients (a, b, c, e) of n = a + b d + c d^2 + e d^3 fitted to measured critical n
    by dimension; None with fewer than four dimensions."""
    if len(critical) < 4:
        return None
    dims = np.array(sorted(critical), dtype=np.float64)
    values = np.array([critical[int(d)] for d in dims], dtype=np.float64)
    return [round(float(c), 6) for c in np.polyfit(dims, values, 3)[::-1]]
