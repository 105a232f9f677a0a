"""The FastAPI app: search, OpenAI-compatible embeddings, document writes, info, metrics, page.

Handlers are thin: they validate (the schemas), run the blocking work on a bounded thread pool
with a timeout, and turn densekit's errors into 4xx answers. Searching, encoding and committing
are the Python API's own.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.trustedhost import TrustedHostMiddleware

from densekit.corpus.document import Document
from densekit.errors import DensekitError
from densekit.retrieve.pipeline import Pipeline
from densekit.serve import schemas
from densekit.serve.batching import EncodeTimeoutError
from densekit.serve.catalog import (
    NAME_PATTERN,
    Catalog,
    ShuttingDownError,
    UnknownCollectionError,
)
from densekit.serve.metrics import CONTENT_TYPE, ServerMetrics
from densekit.serve.middleware import BodyLimit, JsonBodies, RequestMetrics
from densekit.serve.models import ModelPool, UnknownModelError
from densekit.serve.security import key_matches
from densekit.store.changes import DocumentConflictError, UnknownDocumentError

log = logging.getLogger("densekit.serve")
# Declared as security schemes, so the OpenAPI spec says how writes authenticate.
_BEARER = HTTPBearer(auto_error=False, description="the key from --api-key-file")
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
T = TypeVar("T")

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "bad input: the detail says what and where"},
    404: {"model": schemas.Error, "description": "no such collection, model or document"},
    413: {"model": schemas.Error, "description": "request body over the server's limit"},
    503: {"model": schemas.Error, "description": "the request ran past the server's timeout"},
}
_WRITE_ERRORS = {
    **_ERRORS,
    401: {"model": schemas.Error, "description": "the API key is missing or wrong"},
    409: {"model": schemas.Error, "description": "an id already there, or twice in one change"},
}


@dataclass
class ServerState:
    """Everything a running app holds; built by :func:`densekit.serve.server.open_state`."""

    catalog: Catalog
    models: ModelPool
    metrics: ServerMetrics
    pipelines: Mapping[str, Pipeline] = field(default_factory=dict)
    api_key: str | None = None
    timeout_s: float = 30.0
    threads: int = 64
    max_body_bytes: int = 8 * 1024 * 1024
    # Host headers accepted (None: any). A loopback server accepts only loopback names, so a
    # web page cannot reach it through DNS rebinding.
    allowed_hosts: list[str] | None = None
    started: int = field(default_factory=lambda: int(time.time()))

    def close(self) -> None:
        self.catalog.close()
        self.models.close()


def create_app(state: ServerState) -> Any:
    """The ASGI app serving ``state`` (FastAPI, wrapped in the body limit and metrics)."""
    limiter = anyio.CapacityLimiter(state.threads)
    # Writes queue on their own few threads: a burst of them never starves searches.
    write_limiter = anyio.CapacityLimiter(2)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="densekit",
        summary="Dense, lexical and hybrid search over densekit collections; text embeddings.",
        version=_version(),
        docs_url=None,  # the Swagger page loads its assets from a CDN; /openapi.json is here
        redoc_url=None,
        lifespan=lifespan,
    )

    async def blocking(work: Callable[[], T]) -> T:
        """Run ``work`` on the pool; past the timeout the client gets a 503. The thread is
        left to finish, but a query still waiting for the model drops out (the batcher's own
        timeout), so abandoned work does not pile up."""
        with anyio.move_on_after(state.timeout_s):
            return await anyio.to_thread.run_sync(work, limiter=limiter, abandon_on_cancel=True)
        raise HTTPException(503, f"the request took longer than {state.timeout_s:g} s; retry")

    async def committing(work: Callable[[], T]) -> T:
        """Writes are never abandoned: a change commits whole, or not at all."""
        return await anyio.to_thread.run_sync(work, limiter=write_limiter)

    def require_key(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        header_key: Annotated[str | None, Depends(_API_KEY_HEADER)],
    ) -> None:
        if state.api_key is None:
            return
        presented = bearer.credentials if bearer is not None else header_key
        if not key_matches(state.api_key, presented):
            raise HTTPException(
                401,
                "this endpoint needs the server's API key: send `Authorization: Bearer KEY`",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.exception_handler(DensekitError)
    async def densekit_error(_: Request, exc: DensekitError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=_status(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return JSONResponse({"detail": "internal error; see the server log"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(_page())

    @app.get("/health", response_model=schemas.Health, tags=["server"])
    async def health() -> schemas.Health:
        return schemas.Health(collections=len(state.catalog.names))

    @app.get("/metrics", tags=["server"], response_class=Response)
    async def metrics() -> Response:
        """Prometheus text format: requests, latency histograms, errors, batch sizes."""
        return Response(state.metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/collections", response_model=schemas.CollectionList, tags=["collections"])
    async def collections() -> schemas.CollectionList:
        summaries = await blocking(lambda: [_summary(state, n) for n in state.catalog.names])
        return schemas.CollectionList(
            collections=summaries, pipelines=sorted(state.pipelines), models=state.models.names
        )

    @app.get("/collections/{name}", tags=["collections"], responses=_ERRORS)
    async def collection_info(name: str = Path(pattern=NAME_PATTERN)) -> dict[str, Any]:
        return await blocking(lambda: state.catalog.describe(name))

    @app.get(
        "/collections/{name}/documents/{doc_id:path}",
        response_model=schemas.DocumentOut,
        tags=["documents"],
        responses=_ERRORS,
    )
    async def get_document(
        name: str = Path(pattern=NAME_PATTERN),
        doc_id: str = Path(min_length=1, max_length=schemas.MAX_ID_CHARS),
    ) -> schemas.DocumentOut:
        return await blocking(lambda: _document(state, name, doc_id))

    @app.post(
        "/collections/{name}/documents",
        response_model=schemas.ChangeOut,
        tags=["documents"],
        responses=_WRITE_ERRORS,
        dependencies=[Depends(require_key)],
    )
    async def write_documents(
        body: schemas.DocumentsWrite, name: str = Path(pattern=NAME_PATTERN)
    ) -> schemas.ChangeOut:
        """Add, update or upsert documents: one atomic commit; searches go on meanwhile."""
        served = state.catalog[name]
        documents = [
            Document(d.id, d.text, d.title, d.metadata, f"request.documents[{i}]")
            for i, d in enumerate(body.documents)
        ]
        report = await committing(lambda: served.change(**{body.mode: documents}))
        return _change(report)

    @app.post(
        "/collections/{name}/delete",
        response_model=schemas.ChangeOut,
        tags=["documents"],
        responses=_WRITE_ERRORS,
        dependencies=[Depends(require_key)],
    )
    async def delete_documents(
        body: schemas.DocumentsDelete, name: str = Path(pattern=NAME_PATTERN)
    ) -> schemas.ChangeOut:
        served = state.catalog[name]
        report = await committing(lambda: served.change(delete=body.ids))
        return _change(report)

    @app.post(
        "/search",
        response_model=schemas.SearchResponse,
        response_model_exclude_unset=True,
        tags=["search"],
        responses=_ERRORS,
    )
    async def search(body: schemas.SearchRequest) -> schemas.SearchResponse:
        """One query or a batch, by the collection's retriever, another, or a pipeline."""
        served = state.catalog[body.collection]
        pipeline = _pipeline(state, body.pipeline)
        queries = body.queries if body.queries is not None else [body.query or ""]
        fields = body.fields or list(schemas.HIT_FIELDS)
        started = anyio.current_time()

        def run() -> schemas.SearchResponse:
            with served.snapshot() as collection:
                found = collection.search_many(
                    queries, body.k, retriever=body.retriever, pipeline=pipeline
                )
                retriever = pipeline.name if pipeline else body.retriever
                retriever = retriever or collection.manifest.retriever
            # Built here, on the worker thread: a big answer never stalls the event loop.
            return schemas.SearchResponse(
                collection=body.collection,
                retriever=retriever,
                results=[
                    schemas.QueryResult(
                        query=query,
                        hits=[schemas.Hit(**{f: getattr(h, f) for f in fields}) for h in hits],
                    )
                    for query, hits in zip(queries, found, strict=True)
                ],
                took_ms=0.0,
            )

        answer = await blocking(run)
        answer.took_ms = round((anyio.current_time() - started) * 1000, 2)
        return answer

    @app.post(
        "/v1/embeddings",
        response_model=schemas.EmbeddingsResponse,
        tags=["embeddings"],
        responses=_ERRORS,
    )
    async def embeddings(body: schemas.EmbeddingsRequest) -> schemas.EmbeddingsResponse:
        """OpenAI-compatible embeddings with any served model (`GET /v1/models`)."""
        encoder = state.models.by_name(body.model)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if body.dimensions is not None and body.dimensions > encoder.dimension:
            raise HTTPException(
                400,
                f"model {body.model!r} has {encoder.dimension} dimensions; "
                f"`dimensions` must be at most that, got {body.dimensions}",
            )

        def run() -> schemas.EmbeddingsResponse:
            if body.input_type == "query":
                vectors = encoder.encode_queries(texts)
            else:
                vectors = encoder.encode_documents(texts)
            limit = encoder.max_tokens
            tokens = sum(min(n, limit) for n in encoder.token_lengths(texts))
            if body.dimensions is not None:
                vectors = vectors[:, : body.dimensions]
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = vectors / np.maximum(norms, 1e-12)
            return schemas.EmbeddingsResponse(
                data=[
                    schemas.Embedding(index=i, embedding=_encode_vector(v, body.encoding_format))
                    for i, v in enumerate(vectors)
                ],
                model=body.model,
                usage=schemas.Usage(prompt_tokens=tokens, total_tokens=tokens),
            )

        return await blocking(run)

    @app.get("/v1/models", response_model=schemas.ModelList, tags=["embeddings"])
    async def models() -> schemas.ModelList:
        cards = [
            schemas.ModelCard(id=name, created=state.started, dimensions=width)
            for name, width in state.models.dimensions.items()
        ]
        return schemas.ModelList(data=cards)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        """The spec, with `dimensions` bounded by the widest model served now (models come
        with collections, so the spec is rebuilt on each request; it takes milliseconds)."""
        app.openapi_schema = None
        spec = default_openapi()
        widest = max(state.models.dimensions.values(), default=None)
        if widest is not None:
            _bound_dimensions(spec, widest)
        return spec

    app.openapi = openapi  # type: ignore[method-assign]

    if state.allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=state.allowed_hosts)
    return RequestMetrics(BodyLimit(JsonBodies(app), state.max_body_bytes), state.metrics)


def _bound_dimensions(spec: dict[str, Any], widest: int) -> None:
    field = spec["components"]["schemas"]["EmbeddingsRequest"]["properties"]["dimensions"]
    for option in field.get("anyOf", [field]):
        if option.get("type") == "integer":
            option["maximum"] = widest
    field["description"] = (
        "truncate to this many dimensions (then re-normalise); at most the model's width, "
        "listed by GET /v1/models"
    )


def _status(exc: DensekitError) -> int:
    if isinstance(exc, UnknownCollectionError | UnknownModelError | UnknownDocumentError):
        return 404
    if isinstance(exc, DocumentConflictError):
        return 409
    if isinstance(exc, ShuttingDownError | EncodeTimeoutError):
        return 503
    return 400


def _summary(state: ServerState, name: str) -> schemas.CollectionSummary:
    info = state.catalog.describe(name)
    return schemas.CollectionSummary(
        name=name,
        documents=info["documents"],
        retrievers=info["retrievers"],
        default_retriever=info["default_retriever"],
        model=info["model"]["name"] if info["model"] else None,
    )


def _document(state: ServerState, name: str, doc_id: str) -> schemas.DocumentOut:
    with state.catalog[name].snapshot() as collection:
        rows = collection.documents.rows_of([doc_id])
        if doc_id not in rows:  # deleted documents leave the store with their commit
            raise HTTPException(404, f"collection {name!r} has no document {doc_id!r}")
        (document,) = collection.documents.get_rows([rows[doc_id]])
    return schemas.DocumentOut(
        id=document.id, text=document.text, title=document.title, metadata=dict(document.metadata)
    )


def _change(report: Any) -> schemas.ChangeOut:
    return schemas.ChangeOut(
        **{k: getattr(report, k) for k in schemas.ChangeOut.model_fields}  # type: ignore[arg-type]
    )


def _pipeline(state: ServerState, given: str | dict[str, Any] | None) -> Pipeline | None:
    if given is None:
        return None
    if isinstance(given, str):
        found = state.pipelines.get(given)
        if found is None:
            served = ", ".join(sorted(state.pipelines)) or "none"
            raise HTTPException(404, f"no pipeline named {given!r}; served pipelines: {served}")
        return found
    pipeline = Pipeline.from_dict(given, where="pipeline", default_name="inline")
    for i, candidate in enumerate(pipeline.candidates, 1):
        if candidate.k > schemas.MAX_K:
            raise HTTPException(400, f"pipeline: candidates[{i}].k must be at most {schemas.MAX_K}")
    for i, stage in enumerate(pipeline.rerank, 1):
        if stage.top_n > schemas.MAX_K or stage.batch > 256:
            raise HTTPException(
                400, f"pipeline: rerank[{i}]: top_n must be at most {schemas.MAX_K}, batch 256"
            )
    # Models load from the server's disk or a hub: an inline pipeline may only use the models
    # the server's own pipelines already name.
    allowed = {stage.model for p in state.pipelines.values() for stage in p.rerank}
    for i, stage in enumerate(pipeline.rerank, 1):
        if stage.model not in allowed:
            raise HTTPException(
                400,
                f"pipeline: rerank[{i}].model {stage.model!r} is not one this server serves; "
                f"use one of: {', '.join(sorted(allowed)) or 'none (no served pipeline reranks)'}",
            )
    return pipeline


def _encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai client asks for: little-endian float32 bytes
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def _page() -> str:
    return resources.files("densekit.serve").joinpath("static/index.html").read_text("utf-8")


def _version() -> str:
    from densekit import __version__

    return __version__
