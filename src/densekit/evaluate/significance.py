"""Paired significance of "B beats A" on per-query scores, and corrections for many tests.

Both tests the IR literature reports: the paired t-test, and the two-sided randomisation test
(Fisher's, by random sign flips of the per-query differences; Smucker et al., CIKM 2007), whose
p-value is exact up to the sampling of 10,000 flips (seeded: reruns give the same p); a p of 0
means that no flip reached the observed difference: below 1/10,000.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from densekit.errors import InputError

PerQuery = Mapping[str, Mapping[str, float]]  # query id -> measure -> value
Correction = Literal["holm", "bonferroni", "none"]
CORRECTIONS: tuple[Correction, ...] = ("holm", "bonferroni", "none")
FLIPS = 10_000


def paired_tests(a: PerQuery, b: PerQuery, measure: str, seed: int = 0) -> dict:
    """Paired t-test and two-sided randomisation test (``FLIPS`` sign flips) of b − a on the
    queries both score, with the mean difference and the queries b wins, ties and loses."""
    from scipy.stats import ttest_rel

    queries = sorted(set(a) & set(b))
    if not queries:
        raise InputError(f"no query is scored by both sides; nothing to compare on {measure}")
    x = np.array([a[q][measure] for q in queries], dtype=np.float64)
    y = np.array([b[q][measure] for q in queries], dtype=np.float64)
    differences = y - x
    rng = np.random.default_rng(seed)
    flips = rng.choice([-1.0, 1.0], size=(FLIPS, len(differences)))
    observed = abs(differences.mean())
    randomised = float((np.abs((flips * differences).mean(axis=1)) >= observed).mean())
    # No evidence either way where scipy answers NaN: all differences zero, or one query.
    t_p = float(ttest_rel(y, x).pvalue) if differences.any() and len(queries) > 1 else 1.0
    t_p = 1.0 if np.isnan(t_p) else t_p
    return {
        "measure": measure,
        "queries": len(queries),
        "mean_difference": round(float(differences.mean()), 4),
        "better": int((differences > 0).sum()),
        "worse": int((differences < 0).sum()),
        "t_test_p": float(f"{t_p:.3g}"),
        "randomisation_p": randomised,
    }


def corrected(p_values: Sequence[float], method: Correction) -> list[float]:
    """p-values adjusted for testing them together: Holm's step-down (which never rejects less
    than Bonferroni and controls the same family-wise error), Bonferroni's, or none."""
    if method not in CORRECTIONS:
        raise InputError(f"unknown correction {method!r}; choose {', '.join(CORRECTIONS)}")
    p_values = [1.0 if np.isnan(p) else float(p) for p in p_values]  # NaN: no evidence
    m = len(p_values)
    if method == "none" or m == 0:
        return [float(p) for p in p_values]
    if method == "bonferroni":
        return [min(1.0, float(p) * m) for p in p_values]
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(p_values[i])))
        adjusted[i] = running
    return adjusted
