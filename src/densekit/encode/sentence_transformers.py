"""Encoder backend over sentence-transformers: any ST model, local path or hub name."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import torch
from tqdm.auto import tqdm

from densekit.encode.batching import DEFAULT_BATCH_TOKENS, token_budget_batches
from densekit.encode.depth import check_dimension, keep_first_layers
from densekit.encode.devices import resolve_device
from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.encode.model_spec import ModelSpec
from densekit.encode.precision import resolve_precision, torch_dtype
from densekit.encode.truncation import tokenizer_spans
from densekit.errors import InputError


class SentenceTransformerEncoder:
    """Encode with a sentence-transformers model, applying the spec's prompts and normalisation."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_batch: int = 256,
        device: str | None = None,
        max_tokens: int | None = None,
        precision: str | None = None,
    ) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.spec = spec
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        try:
            self.model = SentenceTransformer(spec.location, device=resolve_device(device))
        except (OSError, ValueError) as exc:
            raise InputError(
                f"could not load model {spec.name!r} from {spec.location!r}: {exc}. "
                "Use a registry name (densekit models), a local model folder, or a hub name "
                "on a machine that can reach the hub"
            ) from None
        if max_tokens is not None:
            self.model.max_seq_length = max_tokens
        if spec.layers is not None:
            keep_first_layers(self.model, spec.layers, spec.name)
        if spec.dim is not None:
            check_dimension(spec.dim, self._full_dimension(), spec.name)
        # Long documents are truncated on purpose; the tokenizer's warning per text is noise.
        logging.getLogger("transformers.tokenization_utils_base").setLevel(logging.ERROR)
        self.precision = resolve_precision(precision, str(self.model.device))
        if self.precision != "fp32":
            _ = self.fingerprint  # of the fp32 weights: the same model in any precision
            self.model.to(torch_dtype(self.precision))

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def dimension(self) -> int:
        return self.spec.dim if self.spec.dim is not None else self._full_dimension()

    def _full_dimension(self) -> int:
        get_dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        dim = get_dimension()
        if dim is None:
            features = self._features(["dimension probe"])
            dim = int(self._embed_batch(features).shape[1])
        return int(dim)

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length)

    @cached_property
    def weights_digest(self) -> str:
        """The digest of the float weights as loaded (taken once: other backends key on it)."""
        return weights_digest(self.model.state_dict().items())

    def module_settings(self) -> dict[str, dict]:
        """Each sentence-transformers module's configuration (pooling, normalisation, ...)."""
        return {
            str(index): module.get_config_dict()
            for index, module in enumerate(self.model)
            if hasattr(module, "get_config_dict")
        }

    @cached_property
    def fingerprint(self) -> str:
        settings = {
            "backend": self.spec.backend,
            "modules": self.module_settings(),
            "max_tokens": self.max_tokens,
            "normalize": self.spec.normalize,
            "query_prompt": self.spec.query_prompt,
            "document_prompt": self.spec.document_prompt,
        }
        if self.spec.layers is not None or self.spec.dim is not None:
            settings |= {"layers": self.spec.layers, "dim": self.spec.dim}
        return settings_digest(self.weights_digest, settings)

    @cached_property
    def document_tokens(self) -> int:
        special = self.model.tokenizer.num_special_tokens_to_add()
        return self.max_tokens - special - self._prompt_tokens(self.spec.document_prompt)

    def _prompt_tokens(self, prompt: str) -> int:
        if not prompt:
            return 0
        return len(self.model.tokenizer(prompt, add_special_tokens=False)["input_ids"])

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return tokenizer_spans(self.model.tokenizer, text)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text, special tokens included and before truncation."""
        encoded = self.model.tokenizer(list(texts), add_special_tokens=True, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.spec.query_prompt, progress)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self._encode(texts, self.spec.document_prompt, progress, token_lengths)

    def _encode(
        self,
        texts: Sequence[str],
        prompt: str,
        progress: bool,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        if prompt and not self._pools_prompt_tokens:
            # Pooling that leaves the prompt out needs sentence-transformers' own bookkeeping.
            vectors = self.model.encode(
                list(texts),
                prompt=prompt,
                truncate_dim=self.spec.dim,
                normalize_embeddings=self.spec.normalize,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
            return np.ascontiguousarray(vectors, dtype=np.float32)
        prompted = [prompt + text for text in texts] if prompt else list(texts)
        if token_lengths is None:
            lengths = self.token_lengths(prompted)
        else:  # the prompt's tokens on top: close enough to form batches by
            extra = self._prompt_tokens(prompt)
            lengths = [length + extra for length in token_lengths]
        vectors = np.empty((len(prompted), self.dimension), dtype=np.float32)
        batches = token_budget_batches(lengths, self.max_tokens, self.batch_tokens, self.max_batch)
        for rows in tqdm(batches, desc="encoding", unit="batch", disable=not progress):
            embedded = self._embed_batch(self._features([prompted[i] for i in rows]))
            vectors[rows] = embedded[:, : self.dimension]  # the first dims, when --dim cuts
        if self.spec.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _features(self, texts: list[str]) -> dict[str, torch.Tensor]:
        """Model inputs of a batch: ``preprocess`` (sentence-transformers 6) or ``tokenize``."""
        preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize
        return preprocess(texts)

    def _embed_batch(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        """Sentence embeddings of one tokenized batch (overridden by other runtimes)."""
        from sentence_transformers.util import batch_to_device

        with torch.inference_mode():
            features = batch_to_device(features, self.model.device)
            return self.model.forward(features)["sentence_embedding"].float().cpu().numpy()

    @cached_property
    def _pools_prompt_tokens(self) -> bool:
        return all(getattr(module, "include_prompt", True) for module in self.model)
