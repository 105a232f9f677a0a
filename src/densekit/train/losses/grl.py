"""Generation-augmented representation learning (GRL): align an LLM's two relevance judgements.

For each query's candidates (its positive and hard negatives), representation scores
s_rep = cos / τ and generation scores s_gen = mean token log-probability of the query given the
passage (the same LLM in causal mode),

    L_GRL = KL(softmax(s_gen / τ_gen) ‖ softmax(s_rep)),   s_gen detached (a fixed target).

From ULLME (Man et al., "ULLME: A Unified Framework for Large Language Model Embeddings with
Generation-Augmented Learning", 2024).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def grl_loss(representation: Tensor, generation: Tensor, temperature: float = 1.0) -> Tensor:
    """KL(softmax(generation / temperature) ‖ softmax(representation)) per row, averaged; the
    generation side is a fixed target (detached). Both are (queries, candidates) matrices."""
    target = F.log_softmax(generation.detach() / temperature, dim=-1)
    predicted = F.log_softmax(representation, dim=-1)
    return F.kl_div(predicted, target, log_target=True, reduction="batchmean")
