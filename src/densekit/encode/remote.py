"""An encoder behind any OpenAI-compatible ``POST /v1/embeddings`` endpoint: a hosted API, or a
``densekit serve`` on another machine. For users who cannot run a model where they index.

A model string ``openai:MODEL@BASE_URL`` (see :func:`densekit.encode.registry.remote_spec`)
resolves to backend ``openai``: the spec's location is the base URL, whose ``#fragment`` may
carry client options, ``&``-separated (the fragment is never sent to the server)::

    openai:minilm@http://127.0.0.1:8000/v1#input_type&batch=32&timeout=30&retries=3

``input_type`` also sends densekit's own ``input_type`` field ("query" or "document", so a
densekit server applies its model's prompts; other servers may refuse unknown fields, so it is
off by default); ``batch`` inputs per request (64); ``timeout`` seconds per request (60);
``retries`` after the first try (5); ``backoff`` first retry's delay in seconds (0.5);
``key_env`` the environment variable holding the key; ``max_tokens`` the length the model
reads (8191, as OpenAI's models; used for truncation warnings and chunking only); ``cache=off``.

The API key is read from ``$DENSEKIT_API_KEY``, else ``$OPENAI_API_KEY`` (or ``key_env``), and
is never written anywhere. Connection errors, timeouts, 408, 429 and 5xx answers are retried
with exponential backoff and jitter (a ``Retry-After`` is honoured); any other 4xx fails at
once. Every answer is checked: one finite vector per input, every vector as wide as the first.

The server tokenises, not densekit: token counts here are word-and-punctuation counts, an
approximation used for batching order, truncation warnings and chunk windows only. The
fingerprint digests the endpoint (host and path), model, ``dimensions`` (``--dim``), prompts
and ``input_type``, never the key; it cannot see the server's weights, so a model that changes
behind the same name needs a rebuild (and ``--no-cache``). Query vectors are cached in the
embedding cache under the fingerprint (builds cache document vectors as for every model).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from densekit.encode.cache import EmbeddingCache, default_cache_dir, stored_dimension
from densekit.encode.fingerprint import settings_digest
from densekit.encode.registry import OPENAI_PREFIX, ModelSpec
from densekit.encode.remote_http import (
    KEY_ENVS,
    EmbeddingsEndpoint,
    RemoteEncoderError,
    RetryPolicy,
)
from densekit.errors import InputError

DEFAULT_BATCH = 64
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_TOKENS = 8191  # what OpenAI's embedding models read
PROBE_TEXT = "dimension probe"
FRAGMENT_OPTIONS = ("input_type", "batch", "timeout", "retries", "backoff", "key_env")
FRAGMENT_OPTIONS += ("max_tokens", "cache")
_WORD = re.compile(r"\w+|[^\w\s]")


class RemoteEncoder:
    """Encoder over ``BASE_URL/embeddings``; keyword options override the location's fragment.

    ``batch_tokens`` (the index flags' token budget) is accepted and unused: requests hold
    ``batch_size`` inputs.
    """

    def __init__(
        self,
        spec: ModelSpec,
        *,
        batch_size: int | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        backoff_s: float | None = None,
        max_backoff_s: float | None = None,
        input_type: bool | None = None,
        api_key_env: str | None = None,
        max_tokens: int | None = None,
        cache: bool | None = None,
        cache_dir: str | Path | None = None,
        batch_tokens: int | None = None,
    ) -> None:
        self.spec = spec
        base, fragment = _split_location(spec.location, spec.name)
        given = _fragment_options(fragment, spec)
        pick = _Picker(given, spec)
        self.batch_size = pick(batch_size, "batch", int, DEFAULT_BATCH)
        self._max_tokens = pick(max_tokens, "max_tokens", int, DEFAULT_MAX_TOKENS)
        defaults = RetryPolicy()
        retry = RetryPolicy(
            max_retries=pick(max_retries, "retries", int, defaults.max_retries),
            backoff_s=pick(backoff_s, "backoff", float, defaults.backoff_s),
            max_backoff_s=max_backoff_s if max_backoff_s is not None else defaults.max_backoff_s,
        )
        timeout = pick(timeout_s, "timeout", float, DEFAULT_TIMEOUT_S)
        if min(self.batch_size, self._max_tokens) < 1 or timeout <= 0 or retry.max_retries < 0:
            raise InputError(
                f"{spec.name!r}: batch, timeout and max_tokens must be positive and retries at "
                f"least 0 (got batch={self.batch_size}, timeout={timeout:g}, "
                f"retries={retry.max_retries}, max_tokens={self._max_tokens})"
            )
        if spec.layers is not None:
            raise InputError(f"{spec.name!r}: --layers needs a local model; a remote one has none")
        self.input_type = input_type if input_type is not None else _flag(given, "input_type")
        use_cache = cache if cache is not None else _flag(given, "cache", default=True)
        self.cache_dir = (Path(cache_dir or default_cache_dir())) if use_cache else None
        self.endpoint = EmbeddingsEndpoint(
            base,
            spec.name.removeprefix(OPENAI_PREFIX),
            timeout_s=timeout,
            retry=retry,
            key_env=api_key_env or given.get("key_env"),
        )
        self._dimension: int | None = spec.dim
        self._lock = threading.Lock()

    # -- the Encoder protocol ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def model(self) -> str:
        """The name the endpoint knows the model by."""
        return self.endpoint.model

    @property
    def dimension(self) -> int:
        """``--dim`` when given; else the width of the vectors cached for this fingerprint
        (queries, or a build's documents), or of a probe's answer."""
        if self._dimension is None and self.cache_dir is not None:
            self._dimension = stored_dimension(
                self.cache_dir, self._query_cache_name
            ) or stored_dimension(self.cache_dir, self.fingerprint)
        if self._dimension is None:
            self._request([PROBE_TEXT], "document")  # the first answer fixes the width
        assert self._dimension is not None
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @property
    def document_tokens(self) -> int:
        return self._max_tokens - len(_WORD.findall(self.spec.document_prompt))

    @cached_property
    def fingerprint(self) -> str:
        """What decides the vectors as far as densekit can see: never the key, nor the client
        options (batch, timeout, retries)."""
        parts = urlsplit(self.endpoint.base_url)
        port = f":{parts.port}" if parts.port else ""
        settings = {
            "backend": "openai",
            "endpoint": f"{parts.hostname}{port}{parts.path.rstrip('/')}",
            "model": self.model,
            "dimensions": self.spec.dim,
            "query_prompt": self.spec.query_prompt,
            "document_prompt": self.spec.document_prompt,
            "input_type": self.input_type,
            "normalize": self.spec.normalize,
        }
        return settings_digest("remote", settings)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        """Words and punctuation marks per text: the server's tokenizer is out of reach."""
        return [len(_WORD.findall(text)) for text in texts]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return [match.span() for match in _WORD.finditer(text)]

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self._encode(texts, "query", progress)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self._encode(texts, "document", progress)

    def close(self) -> None:
        self.endpoint.close()

    def __enter__(self) -> RemoteEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- encoding ---------------------------------------------------------------------------

    def _encode(self, texts: Sequence[str], kind: str, progress: bool) -> np.ndarray:
        texts = list(texts)
        unique = list(dict.fromkeys(texts))  # a text twice in one call is sent once
        known = self._cached(unique) if kind == "query" and unique else {}
        todo = [text for text in unique if text not in known]
        prompt = self.spec.query_prompt if kind == "query" else self.spec.document_prompt
        starts = range(0, len(todo), self.batch_size)
        fresh: list[np.ndarray] = []
        for start in _progress(starts, progress and len(starts) > 1, kind):
            batch = todo[start : start + self.batch_size]
            fresh.append(self._request([prompt + text for text in batch], kind))
        if fresh:
            vectors = np.concatenate(fresh)
            known.update(zip(todo, vectors, strict=True))
            if kind == "query":
                self._remember(todo, vectors)
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return np.stack([known[text] for text in texts]).astype(np.float32, copy=False)

    def _request(self, inputs: list[str], kind: str) -> np.ndarray:
        fields: dict[str, Any] = {}
        if self.spec.dim is not None:
            fields["dimensions"] = self.spec.dim
        if self.input_type:
            fields["input_type"] = kind
        vectors = self._checked(self.endpoint.embed(inputs, fields))
        if self.spec.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors

    def _checked(self, rows: list[np.ndarray]) -> np.ndarray:
        """Every vector as wide as the first the encoder saw (or ``--dim``), and finite."""
        with self._lock:
            if self._dimension is None:
                self._dimension = len(rows[0])
            expected = self._dimension
        for index, row in enumerate(rows):
            if len(row) != expected:
                raise RemoteEncoderError(
                    f"{self.endpoint.where}: embedding {index} has {len(row)} dimensions, "
                    f"expected {expected} (from --dim, the cache or the first answer). If the "
                    "model behind the endpoint changed, rebuild the collection with --no-cache"
                )
        vectors = np.stack(rows)
        bad = ~np.isfinite(vectors).all(axis=1)
        if bad.any():
            raise RemoteEncoderError(
                f"{self.endpoint.where}: embedding {int(np.argmax(bad))} has NaN or infinite "
                f"values ({int(bad.sum())} of {len(rows)} do); the server's model is broken"
            )
        return vectors

    @property
    def _query_cache_name(self) -> str:
        return f"{self.fingerprint}-queries"

    def _cached(self, texts: list[str]) -> dict[str, np.ndarray]:
        if self.cache_dir is None:
            return {}
        dimension = self._dimension or stored_dimension(self.cache_dir, self._query_cache_name)
        if dimension is None:
            return {}
        cache = EmbeddingCache(self.cache_dir, self._query_cache_name, dimension)
        try:
            found = cache.get_many(texts)
        finally:
            cache.close()
        with self._lock:
            if found and self._dimension is None:
                self._dimension = dimension
        return {texts[position]: vector for position, vector in found.items()}

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        if self.cache_dir is None:
            return
        # Opened per call: SQLite connections stay on their thread, and servers encode on many.
        cache = EmbeddingCache(self.cache_dir, self._query_cache_name, vectors.shape[1])
        try:
            cache.put_many(texts, vectors)
        finally:
            cache.close()


def _split_location(location: str, name: str) -> tuple[str, str]:
    base, _, fragment = location.partition("#")
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(
            f"{name!r}: the openai backend needs an http(s) base URL, not {base!r}; write the "
            "model as openai:MODEL@BASE_URL, e.g. openai:minilm@http://127.0.0.1:8000/v1"
        )
    try:
        parts.port  # noqa: B018 - a malformed port raises here, not at the first request
    except ValueError:
        raise InputError(f"{name!r}: {base!r} has a malformed port") from None
    secret = {"key", "api_key", "api-key", "apikey", "token", "access_token", "secret"}
    if any(name.lower() in secret for name, _ in parse_qsl(parts.query)):
        raise InputError(
            f"{name!r}: no key in the base URL's query (it is saved in the collection); "
            f"put the key in ${KEY_ENVS[0]} instead"
        )
    if parts.username or parts.password:
        raise InputError(
            f"{name!r}: no credentials in the base URL (it is saved in the collection); "
            f"put the key in ${KEY_ENVS[0]} instead"
        )
    return base, fragment


def _fragment_options(fragment: str, spec: ModelSpec) -> dict[str, str]:
    options = dict(parse_qsl(fragment, keep_blank_values=True))
    unknown = sorted(set(options) - set(FRAGMENT_OPTIONS))
    if unknown:
        raise InputError(
            f"{spec.name!r}: unknown option {', '.join(unknown)} after '#' in "
            f"{spec.location!r}; known: {', '.join(FRAGMENT_OPTIONS)}"
        )
    return options


class _Picker:
    """An option's value: the keyword argument, else the fragment's, else the default."""

    def __init__(self, given: dict[str, str], spec: ModelSpec) -> None:
        self.given = given
        self.spec = spec

    def __call__(self, value: Any, key: str, kind: type, default: Any) -> Any:
        if value is not None:
            return kind(value)
        if key not in self.given:
            return default
        try:
            return kind(self.given[key])
        except ValueError:
            raise InputError(
                f"{self.spec.name!r}: option {key}={self.given[key]!r} in "
                f"{self.spec.location!r} is not a{'n' if kind is int else ''} {kind.__name__}"
            ) from None


def _flag(given: dict[str, str], key: str, *, default: bool = False) -> bool:
    if key not in given:
        return default
    return given[key].lower() not in ("0", "false", "off", "no")


def _progress(starts: range, show: bool, kind: str) -> Any:
    if not show:
        return starts
    from tqdm.auto import tqdm

    return tqdm(starts, desc=f"embedding {kind}s", unit="request")
