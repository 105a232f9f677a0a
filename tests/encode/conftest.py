"""Fixtures of the encoder tests."""

from __future__ import annotations

import numpy as np
import pytest
from backend_reference import BACKEND_TEXTS


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """MiniLM's torch-backend vectors of BACKEND_TEXTS: what runtime backends must match."""
    from densekit.encode import load_encoder

    return load_encoder("minilm").encode_documents(BACKEND_TEXTS)
