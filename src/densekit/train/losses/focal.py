"""Focal weighting of a per-query log-likelihood.

For the log-probability log p_i a query gives its own positive,

    L = mean_i  -(1 - p_i)^γ · log p_i

γ = 0 is the plain negative log-likelihood; γ > 0 shrinks the loss of queries already solved
(p_i near 1) and keeps the hard ones. From the focal loss of Lin et al., "Focal Loss for Dense
Object Detection" (ICCV 2017), applied to InfoNCE in KaLM-Embedding-V2 (Zhao et al., 2025).
"""

from __future__ import annotations

from torch import Tensor


def focal_nll(log_p: Tensor, gamma: float) -> Tensor:
    """The mean focal negative log-likelihood of ``log_p`` (one value per query)."""
    if gamma:
        return -((1 - log_p.exp()) ** gamma * log_p).mean()
    return -log_p.mean()
