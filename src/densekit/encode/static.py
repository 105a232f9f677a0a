"""Static (Model2Vec-style) embeddings: a token-vector lookup and mean, tens of thousands of
documents per second on a CPU. Backed by the ``tokenlearn-static-model`` package."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from densekit.encode.fingerprint import files_digest, settings_digest
from densekit.encode.model_spec import ModelSpec
from densekit.errors import InputError, MissingDependencyError

MAX_TOKENS = 512
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json")


class StaticEncoder:
    """Encoder over a static model folder (config.json, model.safetensors, tokenizer.json)."""

    def __init__(self, spec: ModelSpec) -> None:
        try:
            from static_model import _static_model
            from tokenizers import Tokenizer
        except ImportError:
            raise MissingDependencyError("tokenlearn-static-model", "static") from None
        self.spec = spec
        self.directory = Path(spec.location)
        missing = [name for name in MODEL_FILES if not (self.directory / name).is_file()]
        if missing:
            raise InputError(
                f"{self.directory}: not a static model folder (missing {', '.join(missing)})"
            )
        self._encode_batch = _static_model.encode_batch
        self._tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def dimension(self) -> int:
        return int(self.encode_documents(["dimension probe"]).shape[1])

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS

    @property
    def document_tokens(self) -> int:
        return MAX_TOKENS

    @cached_property
    def fingerprint(self) -> str:
        settings = {"backend": "static", "normalize": self.spec.normalize, "max": MAX_TOKENS}
        return settings_digest(files_digest(self.directory, MODEL_FILES), settings)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._tokenizer.encode_batch(list(texts))]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.encode_documents(texts)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        rows = self._encode_batch(str(self.directory), list(texts), MAX_TOKENS)
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
        if self.spec.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
