"""An encoder around another: everything is the inner encoder's unless a wrapper says otherwise.

Wrappers change how vectors are made (a learned map on query vectors, a server's micro-batching)
while keeping the model, and so its fingerprint: a collection built with the inner encoder
accepts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from densekit.encode.base import Encoder
from densekit.encode.model_spec import ModelSpec


class EncoderWrapper:
    """Delegates the whole :class:`Encoder` protocol to ``inner``; subclasses override parts."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner

    @property
    def spec(self) -> ModelSpec:
        return self.inner.spec

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    @property
    def fingerprint(self) -> str:
        return self.inner.fingerprint

    @property
    def max_tokens(self) -> int:
        return self.inner.max_tokens

    @property
    def document_tokens(self) -> int:
        return self.inner.document_tokens

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return self.inner.token_lengths(texts)

    def token_spans(self, text: str) -> Sequence[tuple[int, int]]:
        return self.inner.token_spans(text)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.encode_queries(texts, progress=progress)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self.inner.encode_documents(texts, progress=progress, token_lengths=token_lengths)
