"""An encoder with a learned map on its query vectors: what a search asks for query vectors.

The wrapped encoder stays the collection's model (same fingerprint: the map belongs to the
collection, trained on that model's vectors). Documents are not mapped here: the collection
stores the model's own document vectors and maps them, when the adapter has a document side,
once per opened snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from densekit.encode.adapters.applied import AppliedAdapter
from densekit.encode.base import Encoder
from densekit.encode.wrapping import EncoderWrapper


class AdaptedEncoder(EncoderWrapper):
    """``inner``'s query vectors passed through ``adapter``; everything else is ``inner``'s."""

    def __init__(self, inner: Encoder, adapter: AppliedAdapter) -> None:
        super().__init__(inner)
        self.adapter = adapter

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = self.inner.encode_queries(texts, progress=progress)
        return self.adapter.queries(texts, vectors, self.inner)

    def __getattr__(self, name: str) -> Any:
        # Backend extras (a server's model lock, the transformers model) stay reachable.
        if name == "inner":  # not set yet
            raise AttributeError(name)
        return getattr(self.inner, name)
