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
from densekit.encode.model_spec import ModelSpec


class AdaptedEncoder:
    """``base``'s query vectors passed through ``adapter``; everything else is ``base``'s."""

    def __init__(self, base: Encoder, adapter: AppliedAdapter) -> None:
        self.base = base
        self.adapter = adapter

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = self.base.encode_queries(texts, progress=progress)
        return self.adapter.queries(texts, vectors, self.base)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self.base.encode_documents(texts, progress=progress, token_lengths=token_lengths)

    @property
    def spec(self) -> ModelSpec:
        return self.base.spec

    @property
    def name(self) -> str:
        return self.base.name

    @property
    def dimension(self) -> int:
        return self.base.dimension

    @property
    def fingerprint(self) -> str:
        return self.base.fingerprint

    @property
    def max_tokens(self) -> int:
        return self.base.max_tokens

    @property
    def document_tokens(self) -> int:
        return self.base.document_tokens

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return self.base.token_lengths(texts)

    def token_spans(self, text: str) -> Sequence[tuple[int, int]]:
        return self.base.token_spans(text)

    def __getattr__(self, name: str) -> Any:
        # Backend extras (a server's model lock, the transformers model) stay reachable.
        return getattr(self.base, name)
