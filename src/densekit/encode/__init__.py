"""Encoders: the protocol, the model registry and the backends."""

from __future__ import annotations

from densekit.encode.base import Encoder
from densekit.encode.registry import DEFAULT_MODEL, REGISTRY, ModelSpec, resolve_model
from densekit.errors import InputError

BACKENDS = ("sentence-transformers", "static")


def load_encoder(model: str | ModelSpec = DEFAULT_MODEL, **options: object) -> Encoder:
    """Load an encoder from a registry name, a local path, a hub name or a :class:`ModelSpec`.

    ``options`` go to the sentence-transformers backend (``batch_tokens``, ``device``, ...).
    """
    spec = resolve_model(model) if isinstance(model, str) else model
    if spec.backend == "static":
        from densekit.encode.static import StaticEncoder

        return StaticEncoder(spec)
    if spec.backend == "sentence-transformers":
        from densekit.encode.sentence_transformers import SentenceTransformerEncoder

        return SentenceTransformerEncoder(spec, **options)  # type: ignore[arg-type]
    raise InputError(
        f"unknown encoder backend {spec.backend!r} for model {spec.name!r}; "
        f"choose one of {', '.join(BACKENDS)}"
    )


__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "REGISTRY",
    "Encoder",
    "ModelSpec",
    "load_encoder",
    "resolve_model",
]
