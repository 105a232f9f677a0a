"""A DPO-style generative term: the query should be likelier after its positive than after each
hard negative, relative to a fixed reference model.

With ℓ(q|p) the summed token log-probability of query q after passage p under the trained model
and ℓ_ref under the reference (the base LLM, LoRA switched off),

    L_DPO = mean over negatives n of −log σ(β · [(ℓ(q|p⁺) − ℓ_ref(q|p⁺)) − (ℓ(q|n) − ℓ_ref(q|n))])

From Rafailov et al., "Direct Preference Optimization: Your Language Model is Secretly a Reward
Model" (NeurIPS 2023), with passages as the preferred and dispreferred contexts.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def dpo_loss(
    policy: Tensor, reference: Tensor, beta: float, present: Tensor | None = None
) -> Tensor:
    """DPO with each query's positive (column 0) preferred to each of its negatives.

    ``policy`` and ``reference`` are (queries, candidates) summed log-probabilities of the query
    given each candidate, under the trained model and the fixed base model; ``present`` masks
    the candidates a row lacks."""
    gain = policy - reference.detach()
    losses = -F.logsigmoid(beta * (gain[:, :1] - gain[:, 1:]))
    return losses.mean() if present is None else losses[present[:, 1:]].mean()
