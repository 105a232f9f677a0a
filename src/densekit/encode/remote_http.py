"""The wire side of :mod:`densekit.encode.remote`: one OpenAI-compatible ``/embeddings``
endpoint, its key, retries with backoff, and the checks every answer must pass."""

from __future__ import annotations

import base64
import binascii
import email.utils
import os
import random
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from densekit.errors import DensekitError, MissingDependencyError

KEY_ENVS = ("DENSEKIT_API_KEY", "OPENAI_API_KEY")
MAX_RETRY_AFTER_S = 120.0
RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx
_sleep = time.sleep  # the tests make waits instant


class RemoteEncoderError(DensekitError):
    """The endpoint refused a request, kept failing, or answered something that is not one
    finite vector per input; ``status`` is the last HTTP status, if there was one."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """Retries after the first try; the n-th waits ``backoff_s * 2**n`` (at most
    ``max_backoff_s``) times a random 0.5-1 (so clients that failed together part), or what a
    ``Retry-After`` says (at most two minutes)."""

    max_retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, MAX_RETRY_AFTER_S)
        ceiling = min(self.max_backoff_s, self.backoff_s * 2**attempt)
        return ceiling * random.uniform(0.5, 1.0)


class EmbeddingsEndpoint:
    """``POST BASE_URL/embeddings`` for one model, with the key from the environment."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        timeout_s: float,
        retry: RetryPolicy,
        key_env: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.url = join_url(base_url, "embeddings")
        self.model = model
        self.timeout_s = timeout_s
        self.retry = retry
        self.key_env = key_env
        self._key = api_key(key_env)
        self._lock = threading.Lock()
        self._http: Any = None

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
                self._http = None

    def _client(self) -> Any:
        with self._lock:
            if self._http is None:
                try:
                    import httpx
                except ImportError:
                    raise MissingDependencyError("httpx", "serve") from None
                headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
                self._http = httpx.Client(headers=headers, timeout=self.timeout_s)
            return self._http

    def embed(self, inputs: list[str], fields: Mapping[str, Any]) -> list[np.ndarray]:
        """One vector per input, in order: the request is retried on connection errors,
        timeouts, 408, 429 and 5xx; any other refusal, or a malformed answer, raises."""
        client = self._client()
        import httpx

        body = {"model": self.model, "input": inputs, "encoding_format": "float", **fields}
        for attempt in range(self.retry.max_retries + 1):
            status: int | None = None
            wait: float | None = None
            try:
                response = client.post(self.url, json=body)
            except httpx.TimeoutException:
                problem = f"no answer within the {self.timeout_s:g} s timeout"
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._rows(response, len(inputs))
                problem = f"HTTP {status}: {server_message(response)}"
                if status not in RETRIED_STATUSES and status < 500:
                    raise RemoteEncoderError(
                        f"{self.where} was refused: {problem}{self._hint(status)}", status
                    )
                wait = retry_after(response)
            if attempt == self.retry.max_retries:
                raise RemoteEncoderError(
                    f"{self.where} failed {attempt + 1} times; the last: {problem}. Check the "
                    "server, or allow more retries or time (#retries=N&timeout=S after the URL)",
                    status,
                )
            _sleep(self.retry.delay(attempt, wait))
        raise AssertionError("unreachable")

    @property
    def where(self) -> str:
        return f"POST {self.url} (model {self.model!r})"

    def _hint(self, status: int) -> str:
        if status in (401, 403):
            names = (self.key_env,) if self.key_env else KEY_ENVS
            where = " or ".join(f"${name}" for name in names)
            if self._key:
                return f". The key from {where} was not accepted"
            return f". No key was sent: set {where} to the endpoint's API key"
        if status == 404:
            return (
                f". Check the base URL {self.base_url!r} (the part before /embeddings, often "
                f"ending in /v1) and the model name (GET {join_url(self.base_url, 'models')})"
            )
        return ""

    def _rows(self, response: Any, expected: int) -> list[np.ndarray]:
        try:
            answer = response.json()
        except ValueError:
            raise RemoteEncoderError(
                f"{self.where}: the answer is not JSON: {response.text[:200]!r}"
            ) from None
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list):
            raise RemoteEncoderError(f"{self.where}: the answer has no `data` list of embeddings")
        if len(data) != expected:
            raise RemoteEncoderError(
                f"{self.where}: sent {expected} inputs but got {len(data)} embeddings back"
            )
        rows: list[np.ndarray | None] = [None] * expected
        for position, item in enumerate(data):
            if not isinstance(item, dict) or "embedding" not in item:
                raise RemoteEncoderError(f"{self.where}: data[{position}] has no `embedding`")
            index = item.get("index", position)
            if type(index) is not int or not 0 <= index < expected or rows[index] is not None:
                raise RemoteEncoderError(
                    f"{self.where}: data[{position}] has index {index!r}; each of "
                    f"0..{expected - 1} must appear once"
                )
            rows[index] = decode_embedding(item["embedding"], f"{self.where}: embedding {index}")
        return rows  # type: ignore[return-value]


def join_url(base: str, endpoint: str) -> str:
    parts = urlsplit(base)  # a query (e.g. Azure's api-version) stays at the end
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{endpoint}"))


def api_key(env: str | None) -> str | None:
    for name in (env,) if env else KEY_ENVS:
        if os.environ.get(name):
            return os.environ[name]
    return None


def server_message(response: Any) -> str:
    """The server's own words: OpenAI's ``error.message``, FastAPI's ``detail``, or the text."""
    try:
        answer = response.json()
    except ValueError:
        message = response.text.strip()
    else:
        message = answer
        if isinstance(answer, dict):
            error = answer.get("error")
            if isinstance(error, dict) and error.get("message"):
                message = error["message"]
            elif error:
                message = error
            elif "detail" in answer:
                message = answer["detail"]
            elif "message" in answer:
                message = answer["message"]
    text = str(message) or response.reason_phrase or "no message"
    return text if len(text) <= 500 else text[:500] + "…"


def retry_after(response: Any) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def decode_embedding(embedding: Any, where: str) -> np.ndarray:
    """A float32 vector from a list of numbers or base64 little-endian float32 bytes."""
    try:
        if isinstance(embedding, str):
            raw = base64.b64decode(embedding, validate=True)
            if len(raw) % 4:
                raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
            vector = np.frombuffer(raw, dtype="<f4").astype(np.float32)
        else:
            with np.errstate(over="ignore"):  # out of float32's range: inf, refused later
                vector = np.asarray(embedding, dtype=np.float32)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise RemoteEncoderError(
            f"{where} is neither a list of numbers nor base64: {exc}"
        ) from None
    if vector.ndim != 1 or vector.size == 0:
        raise RemoteEncoderError(f"{where} is not a non-empty list of numbers")
    return vector
