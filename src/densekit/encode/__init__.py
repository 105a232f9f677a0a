"""Encoders: the protocol, the model registry and the backends."""

from __future__ import annotations

from dataclasses import replace

from densekit.encode.base import Encoder
from densekit.encode.registry import (
    DEFAULT_MODEL,
    OPENAI_PREFIX,
    REGISTRY,
    ModelSpec,
    resolve_model,
)
from densekit.errors import InputError

BACKENDS = (
    "sentence-transformers",
    "torch-int8",
    "onnx",
    "onnx-int8",
    "openvino",
    "openvino-int8",
    "static",
    "openai",
    "decoder",
)


def load_encoder(
    model: str | ModelSpec = DEFAULT_MODEL,
    *,
    backend: str | None = None,
    layers: int | None = None,
    dim: int | None = None,
    **options: object,
) -> Encoder:
    """Load an encoder from a registry name, a local path, a hub name, ``openai:MODEL@URL``
    (a model behind an OpenAI-compatible embeddings endpoint) or a :class:`ModelSpec`.

    ``backend`` overrides the model's own (see ``BACKENDS``; ``openai`` takes the model as the
    endpoint's name for it); ``layers`` and ``dim`` encode with the first layers and keep the
    first dimensions (2D Matryoshka; ``dim`` is the endpoint's ``dimensions``); ``options`` go
    to the backend (``batch_tokens``, ``device``, ... ; see :class:`RemoteEncoder` for the
    endpoint's).
    """
    if isinstance(model, str):
        if backend == "openai" and not model.startswith(OPENAI_PREFIX):
            model = OPENAI_PREFIX + model
        elif model.startswith(OPENAI_PREFIX) and backend not in (None, "openai"):
            raise InputError(
                f"{model!r} is a model behind an HTTP endpoint; it runs there, not on the "
                f"{backend!r} backend: drop --backend"
            )
    spec = resolve_model(model) if isinstance(model, str) else model
    if backend is not None:
        spec = replace(spec, backend=backend)
    if layers is not None or dim is not None:
        spec = replace(spec, layers=layers, dim=dim)
    cuts = spec.backend == "sentence-transformers" or (
        spec.backend == "openai" and spec.layers is None
    )
    if (spec.layers is not None or spec.dim is not None) and not cuts:
        raise InputError(
            f"{spec.name!r}: --layers and --dim work with the sentence-transformers backend "
            f"(and --dim with openai), not {spec.backend!r}"
        )
    if spec.backend == "openai":
        from densekit.encode.remote import RemoteEncoder

        return RemoteEncoder(spec, **options)  # type: ignore[arg-type]
    if spec.backend == "decoder":
        from densekit.encode.decoder import DecoderEncoder

        return DecoderEncoder(spec, **options)  # type: ignore[arg-type]
    if spec.backend == "bpv":
        from densekit.encode.binary_pv_encoder import BinaryPVEncoder

        return BinaryPVEncoder(spec)
    if spec.backend == "static":
        from densekit.encode.static import StaticEncoder

        return StaticEncoder(spec)
    if spec.backend in ("onnx", "onnx-int8"):
        from densekit.encode.onnx import OnnxEncoder

        return OnnxEncoder(spec, **options)  # type: ignore[arg-type]
    if spec.backend in ("openvino", "openvino-int8"):
        from densekit.encode.openvino import OpenVinoEncoder

        return OpenVinoEncoder(spec, **options)  # type: ignore[arg-type]
    if spec.backend == "torch-int8":
        from densekit.encode.torch_int8 import TorchInt8Encoder

        return TorchInt8Encoder(spec, **options)  # type: ignore[arg-type]
    if spec.backend == "sparse":
        raise InputError(
            f"{spec.name!r} is a learned sparse model, not a dense encoder; build a sparse index "
            f"with: densekit index CORPUS --out DIR --sparse {spec.name}"
        )
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
