"""How the server says no: a status and a JSON ``detail`` for every error, never a 500 for
bad input or a disk that cannot take a write."""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from densekit.errors import DensekitError
from densekit.retrieve.scatter_gather import ShardUnavailableError
from densekit.serve import schemas
from densekit.serve.batching import EncodeTimeoutError
from densekit.serve.cancellation import (
    ClientGoneError,
    RequestCancelledError,
    RequestTimeoutError,
)
from densekit.serve.catalog import ShuttingDownError, UnknownCollectionError
from densekit.serve.models import UnknownModelError
from densekit.serve.strict_json import answerable
from densekit.store.changes import DocumentConflictError, UnknownDocumentError

log = logging.getLogger("densekit.serve")

# nginx's "client closed request": only the metrics see it, the client has gone.
CLIENT_GONE = 499

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "bad input: the detail says what and where"},
    404: {"model": schemas.Error, "description": "no such collection, model or document"},
    413: {"model": schemas.Error, "description": "request body over the server's limit"},
    503: {"model": schemas.Error, "description": "the request ran past the server's timeout"},
}
# Every POST: the body must be declared JSON, and browsers on other sites are turned away.
POST_ERRORS: dict[int | str, dict[str, Any]] = {
    **ERRORS,
    403: {"model": schemas.Error, "description": "a request from another site's web page"},
    415: {"model": schemas.Error, "description": "a body not sent as application/json"},
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **POST_ERRORS,
    401: {"model": schemas.Error, "description": "the API key is missing or wrong"},
    403: {
        "model": schemas.Error,
        "description": "a request from another site's web page, or a server that serves "
        "reads only (not on loopback, no API key)",
    },
    409: {"model": schemas.Error, "description": "an id already there, or twice in one change"},
    503: {
        "model": schemas.Error,
        "description": "the collection's filesystem is read-only or not writable; the detail "
        "and `errno` say which",
    },
    507: {
        "model": schemas.Error,
        "description": "the collection's disk is full; nothing was changed",
    },
}

# errno -> (status, what it means to the client)
_STORAGE = {
    errno.ENOSPC: (507, "the disk holding it is full"),
    errno.EDQUOT: (507, "the disk quota of the server's user is used up"),
    errno.EROFS: (503, "its filesystem is read-only"),
    errno.EACCES: (503, "the server may not write there (permission denied)"),
    errno.EPERM: (503, "the server may not write there (operation not permitted)"),
}
# SQLite's own codes for the same conditions (its errors are not OSErrors).
_SQLITE = {13: errno.ENOSPC, 8: errno.EROFS}  # SQLITE_FULL, SQLITE_READONLY


class StorageRefusedError(DensekitError):
    """A write the collection's filesystem did not take (full, read-only, not permitted)."""

    def __init__(self, collection: str, code: int) -> None:
        self.status, reason = _STORAGE[code]
        self.errno = errno.errorcode[code]
        super().__init__(
            f"collection {collection!r} cannot be written: {reason} ({self.errno}); nothing "
            "was changed and searches go on; retry once the server's disk is fixed"
        )


def storage_errno(exc: BaseException) -> int | None:
    """The errno of a full or unwritable disk behind ``exc`` (or what it was raised from)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _STORAGE:
            return current.errno
        if isinstance(current, sqlite3.Error):
            code = _SQLITE.get(getattr(current, "sqlite_errorcode", -1) & 0xFF)
            if code is not None:
                return code
        current = current.__cause__ or current.__context__
    return None


def status_of(exc: DensekitError) -> int:
    if isinstance(exc, StorageRefusedError):
        return exc.status
    if isinstance(exc, UnknownCollectionError | UnknownModelError | UnknownDocumentError):
        return 404
    if isinstance(exc, DocumentConflictError):
        return 409
    if isinstance(exc, ClientGoneError):
        return CLIENT_GONE
    if isinstance(
        exc,
        ShuttingDownError
        | EncodeTimeoutError
        | RequestTimeoutError
        | RequestCancelledError
        | ShardUnavailableError,
    ):
        return 503
    return 400


def install(app: FastAPI) -> None:
    """Answer densekit's errors, validation errors and anything unexpected with JSON."""

    @app.exception_handler(DensekitError)
    async def densekit_error(_: Request, exc: DensekitError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if isinstance(exc, StorageRefusedError):
            body["errno"] = exc.errno
        return JSONResponse(body, status_code=status_of(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # The errors echo the input: made answerable, or one bad character would be a 500.
        detail = answerable(jsonable_encoder(exc.errors()))
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)
