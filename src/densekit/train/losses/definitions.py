"""DefSent+'s loss: each definition sentence's embedding picks out its own entry's target
vector among the batch's entries.

For definitions s (B, d) and their entries' targets t (B, d), both L2-normalised,

    log p_i = log softmax(s_i · T / τ)[i],        L = mean_i -log p_i

where a batch row that defines the same entry (a word's other sense) or has the same definition
(a synonym: WordNet gives every word of a synset one gloss) is left out of row i's denominator:
its target is not a wrong answer for row i. From Liu, "DefSent+" (2024), after Tsukagoshi et
al.'s DefSent (ACL 2021), with the entries embedded as phrases instead of classified over a
vocabulary.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class DefinitionLoss(nn.Module):
    """The loss above, for sentence-transformers' trainer. ``targets`` holds every entry's
    target vector; a row's label is (its entry's index, its definition's index)."""

    def __init__(self, model: Any, targets: Tensor, temperature: float) -> None:
        super().__init__()
        self.model = model
        self.targets = F.normalize(targets.float(), dim=-1)
        self.temperature = temperature

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor) -> Tensor:
        sentences = F.normalize(self.model(features[0])["sentence_embedding"], dim=-1)
        entries, definitions = labels[:, 0].long(), labels[:, 1].long()
        targets = self.targets.to(sentences.device)[entries.cpu()].to(sentences.dtype)
        logits = sentences @ targets.T / self.temperature
        shared = (entries[:, None] == entries[None, :]) | (
            definitions[:, None] == definitions[None, :]
        )
        own = torch.eye(len(entries), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(shared.to(logits.device) & ~own, float("-inf"))
        answers = torch.arange(len(entries), device=logits.device)
        return F.cross_entropy(logits, answers)
