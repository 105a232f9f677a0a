"""Encoding with the first layers and the first dimensions of a model (2D Matryoshka).

A model trained with 2D Matryoshka (2DMSE) keeps most of its quality when run with only its
first L transformer layers and its embeddings cut to the first d dimensions; both make
encoding cheaper (layers) and the index smaller (dimensions).
"""

from __future__ import annotations

from typing import Any

from densekit.errors import InputError

# Where transformers keeps the block list: BERT-likes, decoder LLMs, GPT-2-likes,
# DistilBERT, T5 encoders, XLNet-likes, wrapped decoders.
_BLOCK_PATHS = (
    ("encoder", "layer"),
    ("layers",),
    ("h",),
    ("transformer", "layer"),
    ("encoder", "block"),
    ("layer",),
    ("model", "layers"),
)


def transformer_blocks(module: Any) -> tuple[Any, list[str]] | None:
    """The module that holds the layer list, and the attribute path to the list."""
    import torch

    for path in _BLOCK_PATHS:
        owner = module
        for name in path[:-1]:
            owner = getattr(owner, name, None)
        blocks = getattr(owner, path[-1], None) if owner is not None else None
        if isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0:
            return owner, [path[-1]]
    return None


def keep_first_layers(model: Any, layers: int, name: str) -> None:
    """Cut a sentence-transformers model to its first ``layers`` transformer layers."""
    first = model[0]
    backbone = getattr(first, "auto_model", None) or getattr(first, "model", None)
    found = transformer_blocks(backbone) if backbone is not None else None
    if found is None:
        raise InputError(
            f"{name}: no transformer layers to cut (a static or unusual model); drop --layers"
        )
    owner, (attribute,) = found
    blocks = getattr(owner, attribute)
    if not 1 <= layers <= len(blocks):
        raise InputError(f"{name}: --layers must be 1 to {len(blocks)}, got {layers}")
    setattr(owner, attribute, blocks[:layers])
    config = getattr(backbone, "config", None)
    if config is not None and hasattr(config, "num_hidden_layers"):
        config.num_hidden_layers = layers


def check_dimension(dim: int, full: int, name: str) -> None:
    if not 1 <= dim <= full:
        raise InputError(f"{name}: --dim must be 1 to {full} (its embedding size), got {dim}")
