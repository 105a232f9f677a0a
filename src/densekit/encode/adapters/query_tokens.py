"""Reading queries' tokens (and hidden states) for the lexical bridge."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.adapters.lexsem import QueryTokens
from densekit.errors import InputError


def tokenizer_of(encoder: Any) -> Any:
    """The encoder's own tokenizer; for encoders without one (an API, a static model), the
    bundled MiniLM's WordPiece vocabulary."""
    model = getattr(getattr(encoder, "inner", encoder), "model", None)
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "get_vocab"):
        return tokenizer
    from transformers import AutoTokenizer

    from densekit.encode.registry import REGISTRY

    return AutoTokenizer.from_pretrained(REGISTRY["minilm"].locate())


def load_tokenizer(folder: str | Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def read_query_tokens(
    texts: Sequence[str],
    tokenizer: Any,
    *,
    encoder: Any = None,
    hidden: bool = False,
    batch: int = 64,
) -> QueryTokens:
    """Token ids of ``texts`` (special tokens left out); with ``hidden``, the model's input ids
    (special tokens kept, so every token has its state) and each token's last hidden state."""
    if not hidden:
        encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)
        return QueryTokens([np.asarray(ids, dtype=np.int64) for ids in encoded["input_ids"]])
    model = _sentence_transformer(encoder)
    import torch

    prompt = encoder.spec.query_prompt if encoder is not None else ""
    ids: list[np.ndarray] = []
    states: list[np.ndarray] = []
    for start in range(0, len(texts), batch):
        chunk = [prompt + text for text in texts[start : start + batch]]
        preprocess = getattr(model, "preprocess", None) or model.tokenize
        features = preprocess(chunk)
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            output = model.forward(batch_to_device(dict(features), model.device))
        mask = features["attention_mask"].bool().cpu()
        for row in range(len(chunk)):
            keep = mask[row]
            ids.append(features["input_ids"][row].cpu()[keep].numpy().astype(np.int64))
            states.append(output["token_embeddings"][row].float().cpu()[keep].numpy())
    return QueryTokens(ids, states)


def hidden_size_of(encoder: Any) -> int:
    model = _sentence_transformer(encoder)
    return int(model[0].auto_model.config.hidden_size)


def _sentence_transformer(encoder: Any) -> Any:
    inner = getattr(encoder, "inner", encoder)
    model = getattr(inner, "model", None)
    if model is None or not hasattr(model, "forward") or not hasattr(model, "tokenizer"):
        name = getattr(encoder, "name", type(encoder).__name__)
        raise InputError(
            f"learned lexical weights (llr) read the encoder's hidden states, and {name!r} does "
            "not expose them (an API or a static model); use statistical weights (slr)"
        )
    return model


def token_embeddings_of(encoder: Any, vocabulary: int, dimension: int) -> np.ndarray | None:
    """The encoder's input token embeddings, when they fit a vocabulary x dimension
    projection (a local model whose word vectors are as wide as its sentence vectors)."""
    inner = getattr(encoder, "inner", encoder)
    model = getattr(inner, "model", None)
    try:
        table = model[0].auto_model.get_input_embeddings().weight  # type: ignore[index]
    except (TypeError, AttributeError, IndexError, KeyError):
        return None
    if tuple(table.shape) != (vocabulary, dimension):
        return None
    return table.detach().float().cpu().numpy().copy()
