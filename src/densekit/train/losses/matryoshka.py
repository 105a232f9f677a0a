"""Matryoshka wrappers: the wrapped loss again on each embedding prefix, and optionally on
shallower layers.

1D (MRL): L = Σ_m L_wrapped(prefix_m(embedding)) over the prefix sizes m (the full size among
them). Kusupati et al., "Matryoshka Representation Learning" (NeurIPS 2022).

2D (2DMSE): each step also cuts the transformer at a sampled shallower layer l and adds
L_wrapped on its prefixes, plus kl_weight · KL(last layer ‖ layer l) on the scores. Li et al.,
"2D Matryoshka Sentence Embeddings" (2024).

Both are sentence-transformers' MatryoshkaLoss / Matryoshka2dLoss wrapped around any loss:
``matryoshka_loss(model, InfoNCE(model), MatryoshkaRecipe())``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from densekit.encode.depth import transformer_blocks
from densekit.errors import InputError


@dataclass(frozen=True)
class MatryoshkaRecipe:
    """The loss again on each embedding prefix (MRL); with ``layers``, also on sampled
    shallower layers with a KL term towards the last one (2D Matryoshka, 2DMSE)."""

    dims: tuple[int, ...] = (384, 256, 128, 64, 32)
    layers: bool = False
    layers_per_step: int = 1
    dims_per_step: int = 1  # 2D only; the 1D form uses every prefix each step
    kl_weight: float = 1.0


def matryoshka_loss(model: Any, loss: Any, matryoshka: MatryoshkaRecipe) -> Any:
    """``loss`` wrapped by the 1D or 2D Matryoshka loss ``matryoshka`` describes."""
    from sentence_transformers.sentence_transformer.losses import (
        Matryoshka2dLoss,
        MatryoshkaLoss,
    )

    full = model.get_embedding_dimension()
    if matryoshka.dims[0] > full:
        raise InputError(
            f"loss.matryoshka.dims: {matryoshka.dims[0]} is more than the model's {full} dimensions"
        )
    # The whole embedding is always one of the trained prefixes.
    dims = list(matryoshka.dims) if matryoshka.dims[0] == full else [full, *matryoshka.dims]
    if not matryoshka.layers:
        return MatryoshkaLoss(model, loss, dims)
    backbone = getattr(model[0], "auto_model", None)
    if backbone is None or transformer_blocks(backbone) is None:
        raise InputError(
            "loss.matryoshka.layers (2D Matryoshka) needs a model with transformer layers to cut; "
            "this one has none (a static model?): set layers = false"
        )
    return Matryoshka2dLoss(
        model,
        loss,
        dims,
        n_layers_per_step=matryoshka.layers_per_step,
        n_dims_per_step=matryoshka.dims_per_step,
        kl_div_weight=matryoshka.kl_weight,
    )
