"""Encoder backend over sentence-transformers: any ST model, local path or hub name."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

import numpy as np

from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.encode.registry import ModelSpec
from densekit.errors import InputError


class SentenceTransformerEncoder:
    """Encode with a sentence-transformers model, applying the spec's prompts and normalisation."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        batch_size: int = 32,
        device: str | None = None,
        max_tokens: int | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.spec = spec
        self.batch_size = batch_size
        try:
            self.model = SentenceTransformer(spec.location, device=device)
        except (OSError, ValueError) as exc:
            raise InputError(
                f"could not load model {spec.name!r} from {spec.location!r}: {exc}. "
                "Use a registry name (densekit models), a local model folder, or a hub name "
                "on a machine that can reach the hub"
            ) from None
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens
        # Long documents are truncated on purpose; the tokenizer's warning per text is noise.
        logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def dimension(self) -> int:
        get_dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dimension()
        if dim is None:
            dim = int(self.encode_documents(["dimension probe"]).shape[1])
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    @cached_property
    def fingerprint(self) -> str:
        modules = {
            str(index): module.get_config_dict()
            for index, module in enumerate(self.model)
            if hasattr(module, "get_config_dict")
        }
        settings = {
            "modules": modules,
            "max_tokens": self.max_tokens,
            "normalize": self.spec.normalize,
            "query_prompt": self.spec.query_prompt,
            "document_prompt": self.spec.document_prompt,
        }
        return settings_digest(weights_digest(self.model.state_dict().items()), settings)

    @cached_property
    def document_tokens(self) -> int:
        tokenizer = self.model.tokenizer
        prompt = self.spec.document_prompt
        prompt_tokens = (
            len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) if prompt else 0
        )
        return self.max_tokens - tokenizer.num_special_tokens_to_add() - prompt_tokens

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        encoded = self.model.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, verbose=False
        )
        return [tuple(span) for span in encoded["offset_mapping"]]  # type: ignore[misc]

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.spec.query_prompt, progress)

    def encode_documents(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.spec.document_prompt, progress)

    def _encode(self, texts: Sequence[str], prompt: str, progress: bool) -> np.ndarray:
        vectors = self.model.encode(
            list(texts),
            prompt=prompt or None,
            batch_size=self.batch_size,
            normalize_embeddings=self.spec.normalize,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)
