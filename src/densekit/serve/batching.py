"""Dynamic micro-batching: concurrent callers' texts are encoded together.

A model encodes 16 short queries in little more time than one, so under concurrency a server
that encodes each request alone wastes most of its compute (and an index searches 16 queries
in little more time than one: :mod:`densekit.serve.shard_batching`). :class:`MicroBatcher` runs
one worker thread per model: a caller's texts wait in a queue, the worker takes every job already
waiting (and, for up to ``max_wait_ms``, jobs that arrive while it gathers) up to ``max_batch``
texts, encodes them in one call and hands each caller its own rows. A caller's texts travel in
pieces of at most ``PIECE``, so a big request never holds the model for long while searches
wait. One lock per model keeps encoders, whose tokenizers are not thread-safe, to one call at
a time; a caller that waits past the timeout, or whose request ends (its own timeout, its client
gone: :mod:`densekit.serve.cancellation`), gets an error and its unstarted pieces are dropped, so
the model stops working for it within the one batch already running.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from densekit.encode.base import Encoder
from densekit.encode.wrapping import EncoderWrapper
from densekit.errors import DensekitError
from densekit.serve.cancellation import RequestCancelledError, current_cancellation

BatchObserver = Callable[[int], None]
Item = TypeVar("Item")


# A caller's texts go in pieces of at most this many, so one big request (a write of 1,000
# documents, 2,048 embeddings inputs) holds the model for one piece at a time, not for all.
PIECE = 64


class EncodeTimeoutError(DensekitError):
    """Texts waited longer than the batcher's timeout; their work was dropped."""


@dataclass
class _Job(Generic[Item]):
    texts: Sequence[Item]
    result: Future = field(default_factory=Future)


class MicroBatcher(Generic[Item]):
    """Runs ``encode`` over batches gathered from concurrent :meth:`submit` calls.

    ``encode`` answers a list of items with one result row per item (an array, or a list);
    ``join`` puts a caller's pieces back together. ``isolate_failures``: when a batch fails,
    each caller's items are tried again alone, so only the caller whose input failed sees it
    (right for a model; wrong where a failure is the callee's, not an input's).
    """

    def __init__(
        self,
        encode: Callable[[Sequence[Item]], Any],
        *,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        timeout_s: float | None = None,
        observe: BatchObserver | None = None,
        name: str = "encoder",
        join: Callable[[list[Any]], Any] = np.concatenate,
        isolate_failures: bool = True,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._encode = encode
        self._join = join
        self._isolate_failures = isolate_failures
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.timeout = timeout_s
        self._observe = observe
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._held: _Job | None = None  # taken from the queue, but did not fit the last batch
        self._closed = False
        self._submit_lock = threading.Lock()  # no job can slip in behind the stop marker
        self._worker = threading.Thread(target=self._run, name=f"densekit-batch-{name}")
        self._worker.daemon = True
        self._worker.start()

    def submit(self, texts: Sequence[Item]) -> Any:
        """The vectors of ``texts``, encoded with whatever other callers sent meanwhile."""
        if not texts:
            return self._encode([])
        jobs = [_Job(list(texts[i : i + PIECE])) for i in range(0, len(texts), PIECE)]
        cancellation = current_cancellation()
        if cancellation is not None and cancellation.cancelled:
            raise RequestCancelledError("the request has ended; its encoding was not started")

        def drop() -> None:
            for job in jobs:
                job.result.cancel()  # the worker skips what it has not started

        with self._submit_lock:
            if self._closed:
                raise DensekitError("the encoder is shut down")
            for job in jobs:
                self._jobs.put(job)
        forget = cancellation.on_cancel(drop) if cancellation is not None else None
        try:
            return self._join([job.result.result(timeout=self.timeout) for job in jobs])
        except FutureTimeout:
            drop()
            raise EncodeTimeoutError(
                f"encoding waited longer than {self.timeout:g} s; the server is overloaded, retry"
            ) from None
        except CancelledError:
            drop()
            raise RequestCancelledError(
                "the request has ended (timed out or its client left); its encoding was dropped"
            ) from None
        finally:
            if forget is not None:
                forget()

    def close(self, wait_s: float = 30.0) -> None:
        """Finish the jobs already queued (for up to ``wait_s``), then stop the worker; jobs
        still waiting after that are failed, never left hanging."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        self._worker.join(timeout=wait_s)
        leftovers = [self._held] if self._held is not None else []
        while not self._jobs.empty():
            leftovers.append(self._jobs.get_nowait())
        for job in leftovers:
            if job is not None and job.result.set_running_or_notify_cancel():
                job.result.set_exception(DensekitError("the encoder is shut down"))

    def _run(self) -> None:
        while True:
            first = self._held or self._jobs.get()
            self._held = None
            if first is None:
                return
            # Jobs whose caller gave up (timed out) are cancelled: skip them.
            gathered = self._gather(first)
            batch = [job for job in gathered if job.result.set_running_or_notify_cancel()]
            if batch:
                self._encode_batch(batch)

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
        """Encode ``batch`` (its futures running) and settle every one of its futures."""
        texts = [text for job in batch for text in job.texts]
        try:
            vectors = self._encode(texts)
        except BaseException as exc:  # handed to the callers, who raise it
            if len(batch) == 1 or not self._isolate_failures:
                for job in batch:
                    job.result.set_exception(exc)
                return
            # One caller's text may be what failed: retry alone, so only that caller sees it.
            for job in batch:
                self._encode_batch([job])
            return
        start = 0
        for job in batch:
            job.result.set_result(vectors[start : start + len(job.texts)])
            start += len(job.texts)
        if self._observe is not None:
            with contextlib.suppress(Exception):  # metrics must never stop the encoder
                self._observe(len(texts))


class BatchingEncoder(EncoderWrapper):
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
        timeout_s: float | None = None,
        observe: BatchObserver | None = None,
    ) -> None:
        super().__init__(encoder)
        # Tokenizers are not thread-safe: one call into the model at a time.
        self._lock = threading.Lock()
        self._queries = MicroBatcher(
            self._locked(encoder.encode_queries),
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            timeout_s=timeout_s,
            observe=observe,
            name=f"{encoder.name}-queries",
        )
        self._documents = MicroBatcher(
            self._locked(encoder.encode_documents),
            max_batch=max_batch,
            max_wait_ms=max_wait_ms,
            timeout_s=None,  # writes are never abandoned half-way
            observe=observe,
            name=f"{encoder.name}-documents",
        )

    def exclusive(self) -> threading.Lock:
        """The model's lock, for callers that use the wrapped model directly."""
        return self._lock

    def _locked(self, call: Callable[..., np.ndarray]) -> Callable[[Sequence[str]], np.ndarray]:
        def locked(texts: Sequence[str]) -> np.ndarray:
            with self._lock:
                return call(texts)

        return locked

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
