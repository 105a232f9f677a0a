"""Synthetic hard negatives by mixing (MoCHi).

For query q with its hardest real negatives n_1..n_h (by cosine, never its own positive):

    pair mixes     m = normalise(α · n_a + (1 - α) · n_b),   α ~ U[0, 1)
    query mixes    m = normalise(β · q + (1 - β) · n_c),     β ~ U[0, max_query_share)

β < 0.5, so the query mixes stay negatives yet come closer than the negative they were mixed
from. They carry no gradient: they only make the softmax's denominator harder. From Kalantidis
et al., "Hard Negative Mixing for Contrastive Learning" (NeurIPS 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from densekit.errors import InputError


@dataclass(frozen=True)
class Mixing:
    """How many synthetic negatives per query, made from its ``hardest`` real negatives."""

    pairs: int = 8  # mixes of two hard negatives
    with_query: int = 4  # mixes of the query and one hard negative
    hardest: int = 16
    max_query_share: float = 0.5  # β in β·q + (1-β)·n is drawn from [0, max_query_share)

    def __post_init__(self) -> None:
        if self.pairs < 0 or self.with_query < 0 or self.pairs + self.with_query == 0:
            raise InputError("mixing needs pairs >= 0, with_query >= 0 and at least one mix")
        if self.hardest < 2:
            raise InputError(f"mixing.hardest must be at least 2, got {self.hardest}")
        if not 0 < self.max_query_share <= 0.5:
            raise InputError(
                f"mixing.max_query_share must be in (0, 0.5], got {self.max_query_share}"
            )


def hard_negative_mixes(
    queries: Tensor, documents: Tensor, mixing: Mixing, generator: torch.Generator
) -> Tensor:
    """(B, S, d) normalised synthetic negatives per query, without gradient."""
    with torch.no_grad():
        batch = len(queries)
        scores = queries @ documents.T
        scores[torch.arange(batch), torch.arange(batch)] = float("-inf")  # never the positive
        hardest = min(mixing.hardest, documents.shape[0] - 1)
        top = scores.topk(hardest, dim=1).indices  # (B, h)
        pools = documents[top]  # (B, h, d)
        mixes = []
        if mixing.pairs:
            first = torch.randint(hardest, (batch, mixing.pairs), generator=generator)
            second = torch.randint(hardest, (batch, mixing.pairs), generator=generator)
            alpha = torch.rand(batch, mixing.pairs, 1, generator=generator)
            mixes.append(alpha * _take(pools, first) + (1 - alpha) * _take(pools, second))
        if mixing.with_query:
            chosen = torch.randint(hardest, (batch, mixing.with_query), generator=generator)
            beta = torch.rand(batch, mixing.with_query, 1, generator=generator)
            beta = beta * mixing.max_query_share
            mixes.append(beta * queries[:, None, :] + (1 - beta) * _take(pools, chosen))
        return F.normalize(torch.cat(mixes, dim=1), dim=-1)


def _take(pools: Tensor, index: Tensor) -> Tensor:
    return torch.gather(pools, 1, index[..., None].expand(-1, -1, pools.shape[-1]))
