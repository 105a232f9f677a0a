"""An adapter as a collection applies it: to query vectors at search time (reading the query
texts, for the lexical bridge) and, when it maps them, to the stored document vectors."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.adapters.files import TOKENIZER, Adapter, adapter_kind, load_adapter
from densekit.encode.adapters.lexsem import LexSemBridge
from densekit.encode.adapters.query_tokens import load_tokenizer, read_query_tokens
from densekit.encode.base import Encoder
from densekit.errors import InputError


class AppliedAdapter:
    def __init__(self, adapter: Adapter, card: dict[str, Any], tokenizer: Any = None) -> None:
        self.adapter = adapter
        self.card = card
        self.kind = adapter_kind(adapter)
        self._tokenizer = tokenizer
        self._lock = threading.Lock()  # fast tokenizers are not thread-safe

    @classmethod
    def load(cls, folder: Path, encoder_fingerprint: str) -> AppliedAdapter:
        adapter, card = load_adapter(folder, encoder_fingerprint=encoder_fingerprint)
        tokenizer = None
        if isinstance(adapter, LexSemBridge):
            try:
                tokenizer = load_tokenizer(folder / TOKENIZER)
            except Exception as exc:  # a damaged file fails in the parser's own ways
                raise InputError(
                    f"{folder / TOKENIZER}: unreadable tokenizer ({type(exc).__name__}: {exc})"
                ) from None
        return cls(adapter, card, tokenizer)

    @property
    def maps_documents(self) -> bool:
        return not isinstance(self.adapter, LexSemBridge) and self.adapter.document_map is not None

    def queries(self, texts: Sequence[str], vectors: np.ndarray, encoder: Encoder) -> np.ndarray:
        if not isinstance(self.adapter, LexSemBridge):
            return self.adapter.adapt_queries(vectors)
        learned = self.adapter.spec.weights == "llr"
        # The hidden states come from the encoder's model, which a server shares between threads.
        model_guard = getattr(encoder, "exclusive", None) if learned else None
        with self._lock, model_guard() if model_guard else nullcontext():
            tokens = read_query_tokens(texts, self._tokenizer, encoder=encoder, hidden=learned)
        return self.adapter.adapt_queries(vectors, tokens)

    def documents(self, vectors: np.ndarray) -> np.ndarray:
        assert not isinstance(self.adapter, LexSemBridge)
        return self.adapter.adapt_documents(vectors)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "spec": self.card.get("spec"),
            "trained": self.card.get("trained"),
        }
