"""What the runtime-backend tests (ONNX, OpenVINO) compare against: a few texts, short and long,
MiniLM's torch-backend vectors of them, and the cosine of two sets of vectors row by row."""

from __future__ import annotations

import numpy as np

BACKEND_TEXTS = [
    "Vitamin D deficiency is associated with a higher risk of fractures.",
    "The stock market fell sharply after the announcement.",
    "short",
    "A much longer passage about protein folding, " * 20,
]


def torch_reference() -> np.ndarray:
    from densekit.encode import load_encoder

    return load_encoder("minilm").encode_documents(BACKEND_TEXTS)


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
