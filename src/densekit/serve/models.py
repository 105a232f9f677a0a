"""The models a server encodes with: one loaded copy and one micro-batcher per model.

Collections built with the same model share its encoder, so their queries batch together, and
``/v1/embeddings`` serves the same encoders by name.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from densekit.encode import load_encoder
from densekit.encode.base import Encoder
from densekit.errors import InputError
from densekit.serve.batching import BatchingEncoder
from densekit.store import StoredCollection


@dataclass(frozen=True)
class BatchSettings:
    """Micro-batching: at most ``max_batch`` texts per model call, gathered for at most
    ``max_wait_ms``; ``max_batch`` 1 encodes every request alone."""

    max_batch: int = 64
    max_wait_ms: float = 5.0
    timeout_s: float | None = None  # how long a query may wait for the model

    def __post_init__(self) -> None:
        if self.max_batch < 1:
            raise InputError(f"--max-batch must be at least 1, got {self.max_batch}")
        if not 0 <= self.max_wait_ms <= 1000:
            raise InputError(f"--max-wait-ms must be 0 to 1000, got {self.max_wait_ms}")


class UnknownModelError(InputError):
    """A request named a model the server does not serve."""


class ModelPool:
    def __init__(
        self, batching: BatchSettings, observe: Callable[[str, int], None] | None = None
    ) -> None:
        self.batching = batching
        self._observe = observe
        self._by_fingerprint: dict[str, BatchingEncoder] = {}
        self._by_name: dict[str, BatchingEncoder] = {}
        self._lock = threading.Lock()

    def _wrap(self, encoder: Encoder) -> BatchingEncoder:
        with self._lock:
            known = self._by_fingerprint.get(encoder.fingerprint)
            if known is not None:
                return known
            observe = self._observe
            wrapped = BatchingEncoder(
                encoder,
                max_batch=self.batching.max_batch,
                max_wait_ms=self.batching.max_wait_ms,
                timeout_s=self.batching.timeout_s,
                observe=None if observe is None else lambda size: observe(encoder.name, size),
            )
            self._by_fingerprint[encoder.fingerprint] = wrapped
            self._by_name.setdefault(encoder.name, wrapped)
            return wrapped

    def for_collection(self, collection: StoredCollection) -> BatchingEncoder:
        """The collection's model, loaded once for every collection built with it."""
        info = collection.manifest.encoder
        assert info is not None
        with self._lock:
            known = self._by_fingerprint.get(info.fingerprint)
        return known if known is not None else self._wrap(collection.encoder)

    def add(self, model: str | Encoder) -> BatchingEncoder:
        """Serve ``model`` (a registry name, path or hub name, or a loaded encoder) on
        ``/v1/embeddings`` too, and to the collections built with it."""
        return self._wrap(load_encoder(model) if isinstance(model, str) else model)

    def by_name(self, name: str) -> BatchingEncoder:
        with self._lock:
            found = self._by_name.get(name)
            names = sorted(self._by_name)
        if found is None:
            raise UnknownModelError(
                f"model {name!r} is not served here; served models: "
                f"{', '.join(names) or 'none (start the server with --model NAME)'}"
            )
        return found

    @property
    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._by_name)

    @property
    def dimensions(self) -> dict[str, int]:
        """Each served model's embedding width, by name."""
        with self._lock:
            served = sorted(self._by_name.items())
        # Outside the lock: a remote model may ask its endpoint for its width.
        return {name: encoder.dimension for name, encoder in served}

    def close(self) -> None:
        with self._lock:
            encoders = list(self._by_fingerprint.values())
        for encoder in encoders:
            encoder.close()
