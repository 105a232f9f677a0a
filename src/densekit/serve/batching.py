"""Dynamic micro-batching: concurrent callers' texts are encoded together.

A model encodes 16 short queries in little more time than one, so under concurrency a server
that encodes each request alone wastes most of its compute. :class:`MicroBatcher` runs one
worker thread per model: a caller's texts wait in a queue, the worker takes every job already
waiting (and, for up to ``max_wait_ms``, jobs that arrive while it gathers) up to ``max_batch``
texts, encodes them in one call and hands each caller its own rows. A job is never split, so a
caller's vectors come from one call. One worker per model also keeps encoders, whose
tokenizers are not thread-safe, to one call at a time.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from densekit.encode.base import Encoder
from densekit.encode.registry import ModelSpec
from densekit.errors import DensekitError

BatchObserver = Callable[[int], None]


@dataclass
class _Job:
    texts: Sequence[str]
    result: Future = field(default_factory=Future)


class MicroBatcher:
    """Runs ``encode`` over batches gathered from concurrent :meth:`submit` calls."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        observe: BatchObserver | None = None,
        name: str = "encoder",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._encode = encode
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self._observe = observe
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._held: _Job | None = None  # taken from the queue, but did not fit the last batch
        self._closed = False
        self._worker = threading.Thread(target=self._run, name=f"densekit-batch-{name}")
        self._worker.daemon = True
        self._worker.start()

    def submit(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``, encoded with whatever other callers sent meanwhile."""
        if self._closed:
            raise DensekitError("the encoder is shut down")
        if not texts:
            return self._encode([])
        job = _Job(list(texts))
        self._jobs.put(job)
        return job.result.result()

    def close(self) -> None:
        """Finish the jobs already queued, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._jobs.put(None)
            self._worker.join()

    def _run(self) -> None:
        while True:
            first = self._held or self._jobs.get()
            self._held = None
            if first is None:
                return
            self._encode_batch(self._gather(first))

    def _gather(self, first: _Job) -> list[_Job]:
        batch, size = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            try:
                job = self._jobs.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if job is None:  # shutting down: encode what we have, then stop
                self._jobs.put(None)
                break
            if size + len(job.texts) > self.max_batch:
                self._held = job
                break
            batch.append(job)
            size += len(job.texts)
        return batch

    def _encode_batch(self, batch: list[_Job]) -> None:
        texts = [text for job in batch for text in job.texts]
        try:
            vectors = self._encode(texts)
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].result.set_exception(exc)
                return
            # One caller's text may be what failed: retry alone, so only that caller sees it.
            for job in batch:
                self._encode_batch([job])
            return
        if self._observe is not None:
            self._observe(len(texts))
        start = 0
        for job in batch:
            job.result.set_result(vectors[start : start + len(job.texts)])
            start += len(job.texts)


class BatchingEncoder:
    """An :class:`Encoder` whose query and document encodings go through micro-batchers.

    Everything else (name, fingerprint, dimension, token counts) is the wrapped encoder's, so a
    collection accepts it as its own model.
    """

    def __init__(
        self,
        encoder: Encoder,
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        observe: BatchObserver | None = None,
    ) -> None:
        self.inner = encoder
        # Tokenizers are not thread-safe: one call into the model at a time.
        self._lock = threading.Lock()
        self._queries = MicroBatcher(
            self._locked(encoder.encode_queries),
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            observe=observe,
            name=f"{encoder.name}-queries",
        )
        self._documents = MicroBatcher(
            self._locked(encoder.encode_documents),
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            observe=observe,
            name=f"{encoder.name}-documents",
        )

    def _locked(self, call: Callable[..., np.ndarray]) -> Callable[[Sequence[str]], np.ndarray]:
        def locked(texts: Sequence[str]) -> np.ndarray:
            with self._lock:
                return call(texts)

        return locked

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
        with self._lock:
            return self.inner.token_lengths(texts)

    def token_spans(self, text: str) -> Sequence[tuple[int, int]]:
        with self._lock:
            return self.inner.token_spans(text)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._queries.submit(texts)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self._documents.submit(texts)

    def close(self) -> None:
        self._queries.close()
        self._documents.close()
