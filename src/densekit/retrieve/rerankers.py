"""Rerankers, loaded from a pipeline's rerank stage: pointwise models that score (query,
passage) pairs, and listwise ones that score a query's candidate list as a whole."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from densekit.encode.devices import resolve_device
from densekit.encode.precision import resolve_precision, torch_dtype
from densekit.encode.truncation import tokenizer_prefix
from densekit.errors import DensekitError, InputError
from densekit.retrieve.pipeline import RerankStage


class Reranker(Protocol):
    name: str

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Relevance of each (query, passage) pair; higher is better."""
        ...


@runtime_checkable
class ListReranker(Protocol):
    name: str

    def score_lists(
        self, queries: Sequence[str], passages: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """Relevance of each query's passages, read as one list; higher is better."""
        ...


class CrossEncoderReranker:
    """A sentence-transformers CrossEncoder: query and passage read together by one model."""

    def __init__(self, model: str, *, batch: int = 32, max_length: int | None = None) -> None:
        import torch
        from sentence_transformers import CrossEncoder

        logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
        self.name = model
        self.batch = batch
        # The accelerator when there is one (sentence-transformers picks it), else the CPU.
        self.model = CrossEncoder(model, max_length=max_length, device=resolve_device())
        precision = resolve_precision(None, str(self.model.device))
        if precision != "fp32":
            self.model.model.to(torch_dtype(precision))
        self._identity = torch.nn.Identity()
        self._lock = threading.Lock()  # tokenizers are not thread-safe; servers call from many

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.empty(0, dtype=np.float32)
        # Raw logits, whatever activation the model was saved with: a sigmoid would squash the
        # scale that a blend with the incoming scores (``weight`` < 1) relies on.
        with self._lock:
            tokens = self.model.max_seq_length or self.model.tokenizer.model_max_length
            # Cut before tokenising: a huge stored document is otherwise tokenised whole per query.
            read = [(q, tokenizer_prefix(self.model.tokenizer, p, tokens)) for q, p in pairs]
            scores = self.model.predict(
                read,
                batch_size=self.batch,
                show_progress_bar=False,
                convert_to_numpy=True,
                activation_fn=self._identity,
            )
        return np.asarray(scores, dtype=np.float32).reshape(len(pairs))


class LikelihoodReranker:
    """Generation-based relevance (UPR): the mean log-probability of the query given the
    passage under a causal LM, which reads passage and query in one pass."""

    def __init__(self, model: str, *, batch: int = 8, max_length: int | None = None) -> None:
        from densekit.encode.causal import CausalLM

        self.name = model
        self.batch = batch
        self.passage_tokens = max_length or 256
        self.lm = CausalLM.load(model)
        self._lock = threading.Lock()

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        with self._lock:
            return self.lm.query_log_likelihood(
                pairs, batch=self.batch, passage_tokens=self.passage_tokens
            )


class MultiViewReranker:
    """An MVP model (:mod:`densekit.encode.multiview`): each query's candidates are read one by
    one, ``batch`` at a time, and scored together in one decoding step."""

    def __init__(self, model: str, *, batch: int = 32, views: int | None = None) -> None:
        from densekit.encode.multiview_folder import load_multiview

        self.name = model
        self.batch = batch
        self.model = load_multiview(model)
        if views is not None and views != self.model.shape.views:
            raise InputError(
                f"{model}: the model has {self.model.shape.views} views, not {views}; set "
                f"views = {self.model.shape.views} or drop it"
            )
        self._lock = threading.Lock()

    def score_lists(
        self, queries: Sequence[str], passages: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        with self._lock:
            return [
                self.model.score_list(query, list(texts), self.batch)
                for query, texts in zip(queries, passages, strict=True)
            ]


def load_reranker(stage: RerankStage, where: str) -> Reranker | ListReranker:
    """The reranker of ``stage``; a model that fails to load is reported with ``where``.

    Loaded once per process, stage and model folder version, so every snapshot of a served
    collection (and every evaluation of a sweep) shares one copy of the model.
    """
    local = Path(stage.model)
    if local.exists() and not local.is_dir():
        raise InputError(f"{where}: model {stage.model!r} is a file; give the model folder")
    version = (local.stat().st_ino, local.stat().st_mtime_ns) if local.exists() else None
    try:
        return _load_reranker(stage, version)
    except DensekitError as exc:
        raise InputError(f"{where}: {exc}") from None
    except (OSError, ValueError, RuntimeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"{where}: could not load the {stage.kind} model {stage.model!r} ({reason}); give a "
            "model folder (densekit train-reranker makes cross-encoder and mvp models) or a hub "
            "name"
        ) from None


@functools.lru_cache(maxsize=8)
def _load_reranker(stage: RerankStage, version: tuple[int, int] | None) -> Reranker | ListReranker:
    """``version`` (the folder's inode and mtime) keys the cache: a model replaced in place
    is loaded afresh."""
    if stage.kind == "mvp":
        return MultiViewReranker(stage.model, batch=stage.batch, views=stage.views)
    if stage.kind == "listwise":
        from densekit.retrieve.listwise import ListwiseReranker

        return ListwiseReranker(
            stage.model,
            window=stage.listwise_window,
            step=stage.listwise_step,
            max_length=stage.max_length,
        )
    if stage.kind == "llm":
        return LikelihoodReranker(stage.model, batch=stage.batch, max_length=stage.max_length)
    return CrossEncoderReranker(stage.model, batch=stage.batch, max_length=stage.max_length)
