"""What a model is to densekit: where its weights are and how it encodes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to load a model and encode with it the way it was trained."""

    name: str
    location: str
    query_prompt: str = ""
    document_prompt: str = ""
    normalize: bool = True
    description: str = ""
    backend: str = "sentence-transformers"
    layers: int | None = None  # encode with the first layers only (2D Matryoshka)
    dim: int | None = None  # keep the first dimensions of each embedding (Matryoshka)
