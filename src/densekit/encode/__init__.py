"""Encoders: the protocol, the model registry and the backends."""

from __future__ import annotations

from densekit.encode.base import Encoder
from densekit.encode.registry import DEFAULT_MODEL, REGISTRY, ModelSpec, resolve_model


def load_encoder(model: str | ModelSpec = DEFAULT_MODEL, **options: object) -> Encoder:
    """Load an encoder from a registry name, a local path, a hub name or a :class:`ModelSpec`."""
    from densekit.encode.sentence_transformers import SentenceTransformerEncoder

    spec = resolve_model(model) if isinstance(model, str) else model
    return SentenceTransformerEncoder(spec, **options)  # type: ignore[arg-type]


__all__ = ["DEFAULT_MODEL", "REGISTRY", "Encoder", "ModelSpec", "load_encoder", "resolve_model"]
