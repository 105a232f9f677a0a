"""Request bodies read as strict JSON, and validation errors that can always be answered.

Python's JSON reader takes ``NaN`` and ``Infinity``, turns ``1e400`` into an infinite float and
``"\\ud800"`` into a string that cannot be written back as UTF-8; any of them used to reach a
handler (or the validation error that echoes it) and end as a 500. Here a body holding one is
refused with a 400 naming what and where, before any handler sees it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi.routing import APIRoute

# Where a lone surrogate can come from: a \uD800-\uDFFF escape, or the bytes of one (Python's
# reader decodes bytes with "surrogatepass"). Bodies without either skip the walk.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class BodyError(ValueError):
    """A body that parses as Python's JSON but is not JSON this API accepts."""


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"the number {text[:40]} is too large for a 64-bit float")
    return value


def _no_constant(name: str) -> Any:
    raise BodyError(f"{name} is not a JSON number; send a finite number")


def loads(body: bytes) -> Any:
    """``body`` as JSON, refusing non-finite numbers and lone surrogates (:class:`BodyError`);
    malformed JSON raises :class:`json.JSONDecodeError` as usual."""
    try:
        value = json.loads(body, parse_float=_finite, parse_constant=_no_constant)
    except json.JSONDecodeError:
        raise
    except ValueError as exc:  # also int(): a number of more than 4,300 digits
        raise BodyError(str(exc)) from None
    if _MAYBE_SURROGATE.search(body):
        _refuse_surrogates(value, "body")
    return value


def _refuse_surrogates(value: Any, where: str) -> None:
    if isinstance(value, str):
        if not _encodable(value):
            raise BodyError(f"{where} holds a lone UTF-16 surrogate; send valid Unicode text")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                raise BodyError(f"a key in {where} holds a lone UTF-16 surrogate")
            _refuse_surrogates(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_surrogates(item, f"{where}[{i}]")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            try:
                self._json = loads(await self.body())
            except BodyError as exc:
                raise HTTPException(400, f"the request body is not valid JSON: {exc}") from None
        return self._json


class StrictJsonRoute(APIRoute):
    """Routes whose handlers read the body through :class:`StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict


def answerable(value: Any) -> Any:
    """``value`` (an echo of the input, in a validation error) with what JSON cannot carry
    spelled out: non-finite numbers as text, lone surrogates escaped."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value if _encodable(value) else value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {answerable(k): answerable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [answerable(v) for v in value]
    return value
