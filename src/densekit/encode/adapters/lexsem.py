"""Lexical query enhancement (LexSemBridge): token evidence that sharpens a dense query vector.

Dense vectors blur exact words and spans. LexSemBridge builds a vocabulary-space weight vector
w from the query's tokens, projects it to the embedding dimension and modulates the frozen
query embedding element-wise:

    e′ = normalise(softmax(W w) ⊙ e)

``slr`` (statistical) weighs each distinct query token by its IDF over the corpus; ``llr``
(learned) weighs every token by a small head on the encoder's hidden state of that token. W
starts at zero, so softmax(W w) is uniform and an untrained bridge leaves queries unchanged;
training fits W (and the head) with the backbone and the document vectors frozen.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from densekit.errors import InputError

LexicalWeights = Literal["slr", "llr"]
LEXICAL_WEIGHTS: tuple[LexicalWeights, ...] = ("slr", "llr")


@dataclass(frozen=True)
class LexSemSpec:
    """Which lexical weights feed the bridge: ``slr`` (IDF of the query's tokens, any encoder)
    or ``llr`` (learned from the encoder's hidden states, local models only)."""

    weights: LexicalWeights = "slr"

    def __post_init__(self) -> None:
        if self.weights not in LEXICAL_WEIGHTS:
            raise InputError(
                f"lexical weights must be one of {', '.join(LEXICAL_WEIGHTS)}, got {self.weights!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class QueryTokens:
    """What the bridge reads from a batch of queries: token ids (no special tokens) and, for
    ``llr``, each token's hidden state from the frozen encoder."""

    ids: list[np.ndarray]
    hidden: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: Sequence[int]) -> QueryTokens:
        hidden = None if self.hidden is None else [self.hidden[r] for r in rows]
        return QueryTokens([self.ids[r] for r in rows], hidden)


def document_frequency_idf(token_ids: Sequence[np.ndarray], vocabulary: int) -> np.ndarray:
    """BM25's IDF, log(1 + (N − df + 0.5) / (df + 0.5)), per vocabulary entry."""
    frequency = np.zeros(vocabulary, dtype=np.int64)
    for ids in token_ids:
        frequency[np.unique(ids)] += 1
    total = len(token_ids)
    return np.log1p((total - frequency + 0.5) / (frequency + 0.5)).astype(np.float32)


class LexSemBridge:
    """The learned parts: the projection W (vocabulary → dimension, as a summing embedding
    bag over the query's tokens) and, for ``llr``, the token-weight head."""

    def __init__(
        self,
        spec: LexSemSpec,
        vocabulary: int,
        dimension: int,
        *,
        idf: np.ndarray | None = None,
        hidden_size: int | None = None,
        token_embeddings: np.ndarray | None = None,
    ) -> None:
        import torch

        if vocabulary < 1 or dimension < 1:
            raise InputError("a lexical bridge needs a vocabulary and a vector dimension")
        self.spec = spec
        self.vocabulary = vocabulary
        self.dimension = dimension
        self.projection = torch.nn.EmbeddingBag(vocabulary, dimension, mode="sum")
        # The gate's logits are scale · W w. From zero W the gate learns each token's row from
        # the pairs alone, so tokens never seen in training add nothing; starting W at the
        # encoder's own token embeddings gives every token a meaningful row, and a scale that
        # starts at zero keeps the untrained bridge the identity.
        self.scale = torch.nn.Parameter(torch.tensor(1.0), requires_grad=False)
        if token_embeddings is None:
            torch.nn.init.zeros_(self.projection.weight)
        else:
            if token_embeddings.shape != (vocabulary, dimension):
                raise InputError(
                    f"token embeddings of shape {token_embeddings.shape} cannot start a "
                    f"{vocabulary} x {dimension} projection"
                )
            with torch.no_grad():
                self.projection.weight.copy_(torch.from_numpy(token_embeddings))
            self.scale = torch.nn.Parameter(torch.tensor(0.0))
        self.idf: torch.Tensor | None = None
        self.head: torch.nn.Linear | None = None
        if spec.weights == "slr":
            if idf is None or len(idf) != vocabulary:
                raise InputError("statistical weights (slr) need one IDF value per token")
            self.idf = torch.from_numpy(np.asarray(idf, dtype=np.float32))
        else:
            if hidden_size is None or hidden_size < 1:
                raise InputError("learned weights (llr) need the encoder's hidden size")
            self.head = torch.nn.Linear(hidden_size, 1)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.constant_(self.head.bias, math.log(math.e - 1))  # softplus → 1

    def parameters(self) -> list[Any]:
        modules = [self.projection] + ([self.head] if self.head is not None else [])
        learned_scale = [self.scale] if self.scale.requires_grad else []
        return [p for module in modules for p in module.parameters()] + learned_scale

    def modulate(self, vectors: Any, tokens: QueryTokens) -> Any:
        """e′ for a batch: ``vectors`` (n, d) tensor of query embeddings, ``tokens`` theirs."""
        import torch

        if len(tokens) != len(vectors):
            raise InputError(f"{len(vectors)} query vectors but {len(tokens)} token lists")
        flat, offsets, weights = self._bag(tokens)
        logits = self.scale * self.projection(flat, offsets, per_sample_weights=weights)
        # ×d keeps an untrained (uniform) gate at 1, so e′ = e exactly before training.
        gate = torch.softmax(logits, dim=-1) * self.dimension
        return torch.nn.functional.normalize(gate * vectors, dim=-1)

    def _bag(self, tokens: QueryTokens) -> tuple[Any, Any, Any]:
        import torch

        statistical = self.spec.weights == "slr"
        ids = [np.unique(i) for i in tokens.ids] if statistical else list(tokens.ids)  # presence
        lengths = [len(i) for i in ids]
        flat = torch.from_numpy(np.concatenate(ids).astype(np.int64) if ids else np.empty(0))
        offsets = torch.tensor([0, *np.cumsum(lengths)[:-1].tolist()], dtype=torch.long)
        if statistical:
            assert self.idf is not None
            weights = self.idf[flat]
        else:
            assert self.head is not None
            if tokens.hidden is None:
                raise InputError("learned weights (llr) need the queries' hidden states")
            states = torch.from_numpy(np.concatenate(tokens.hidden).astype(np.float32))
            weights = torch.nn.functional.softplus(self.head(states)).squeeze(-1)
        return flat, offsets[: len(ids)], weights

    def adapt_queries(self, vectors: np.ndarray, tokens: QueryTokens) -> np.ndarray:
        import torch

        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise InputError(
                f"the bridge modulates {self.dimension}-dimensional vectors, got {vectors.shape}"
            )
        with torch.no_grad():
            unit = torch.nn.functional.normalize(torch.from_numpy(vectors), dim=-1)
            return self.modulate(unit, tokens).numpy()

    def state(self) -> dict[str, Any]:
        tensors = {"projection.weight": self.projection.weight, "scale": self.scale}
        if self.idf is not None:
            tensors["idf"] = self.idf
        if self.head is not None:
            tensors |= {f"head.{k}": v for k, v in self.head.state_dict().items()}
        return tensors

    def load_state(self, tensors: dict[str, Any]) -> None:
        import torch

        with torch.no_grad():
            self.projection.weight.copy_(tensors["projection.weight"])
            self.scale.copy_(tensors["scale"])
            if self.idf is not None:
                self.idf = tensors["idf"].float()
            if self.head is not None:
                self.head.load_state_dict(
                    {k[len("head.") :]: v for k, v in tensors.items() if k.startswith("head.")}
                )
