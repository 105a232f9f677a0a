"""DefSent+'s loss: each definition sentence's embedding picks out its own entry's target
vector among the batch's entries.

For definitions s (B, d) and their entries' targets t (B, d), both L2-normalised,

    log p_i = log softmax(s_i · T / τ)[i],        L = mean_i -log p_i

where another definition of the same entry in the batch (the same target) is left out of the
denominator: it is not a negative. From Liu, "DefSent+" (2024), after Tsukagoshi et al.'s
DefSent (ACL 2021), with the entries embedded as phrases instead of classified over a
vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_SAME_TARGET = 1 - 1e-6  # cosine of two copies of one unit vector, up to rounding


class DefinitionLoss(nn.Module):
    """The loss above, for sentence-transformers' trainer: the label of each row is the target
    vector of its entry."""

    def __init__(self, model: Any, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.temperature = temperature

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor) -> Tensor:
        sentences = F.normalize(self.model(features[0])["sentence_embedding"], dim=-1)
        targets = F.normalize(labels.to(sentences.dtype), dim=-1)
        logits = sentences @ targets.T / self.temperature
        own = torch.eye(len(targets), dtype=torch.bool, device=targets.device)
        logits = logits.masked_fill((targets @ targets.T > _SAME_TARGET) & ~own, float("-inf"))
        answers = torch.arange(len(targets), device=targets.device)
        return F.cross_entropy(logits, answers)
