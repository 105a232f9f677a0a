"""The encoder protocol every embedding backend implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from densekit.encode.model_spec import ModelSpec


@runtime_checkable
class Encoder(Protocol):
    """Maps texts to float32 vectors; queries and documents may be encoded differently."""

    @property
    def spec(self) -> ModelSpec:
        """The model and the prompts and normalisation it encodes with."""
        ...

    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def fingerprint(self) -> str:
        """A digest of the weights and encoding settings: equal fingerprints, equal vectors."""
        ...

    @property
    def max_tokens(self) -> int:
        """How many tokens of a text the model reads; the rest is truncated."""
        ...

    @property
    def document_tokens(self) -> int:
        """How many tokens of a document's own text fit, after special tokens and prompt."""
        ...

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens each text has, special tokens included, before truncation."""
        ...

    def token_spans(self, text: str) -> Sequence[tuple[int, int]]: ...

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        """Document vectors; ``token_lengths`` (as :meth:`token_lengths` counts them) spare
        encoders that batch by tokens a second tokenization when the caller has them."""
        ...
