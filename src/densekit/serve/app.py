"""The FastAPI app: search, OpenAI-compatible embeddings, document writes, info, metrics, page.

Handlers are thin: they validate (the schemas), run the blocking work on a bounded thread pool
with a timeout, and turn densekit's errors into 4xx answers. Searching, encoding and committing
are the Python API's own. Around the app: the body limit and deadline, a cap on requests in
flight, the cross-site guard and the metrics (:func:`create_app`).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Annotated, Any, TypeVar

import anyio
import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.middleware.cors import CORSMiddleware
from starlette.routing import Match

from densekit.corpus.document import Document
from densekit.retrieve.scatter_gather import partial_results
from densekit.serve import refusals, schemas
from densekit.serve.cancellation import run_cancellable
from densekit.serve.catalog import NAME_PATTERN
from densekit.serve.guards import CrossSiteGuard, LoopbackHostGuard
from densekit.serve.highlights import highlight_hits
from densekit.serve.integrity import start_integrity_checks
from densekit.serve.metrics import CONTENT_TYPE
from densekit.serve.middleware import BodyLimit, InFlightLimit, RequestMetrics
from densekit.serve.pipelines import requested_pipeline
from densekit.serve.refusals import ERRORS, POST_ERRORS, WRITE_ERRORS, StorageRefusedError
from densekit.serve.security import is_loopback, key_matches
from densekit.serve.spec import served_spec
from densekit.serve.state import ServerState
from densekit.serve.strict_json import StrictJsonRoute

# Declared as security schemes, so the OpenAPI spec says how writes authenticate.
_BEARER = HTTPBearer(auto_error=False, description="the key from --api-key-file")
_API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False)
T = TypeVar("T")


def create_app(state: ServerState) -> Any:
    """The ASGI app serving ``state`` (FastAPI, wrapped in the body limit and metrics)."""
    limiter = anyio.CapacityLimiter(state.threads)
    # Writes queue on their own few threads: a burst of them never starves searches.
    write_limiter = anyio.CapacityLimiter(2)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        start_integrity_checks(state)  # reads every file in the background
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
    # Bodies are read as strict JSON: no NaN, no 1e400, no lone surrogates.
    app.router.route_class = StrictJsonRoute
    refusals.install(app)

    async def blocking(work: Callable[[], T], request: Request) -> T:
        """Run ``work`` on the pool; past the timeout the client gets a 503. The thread is
        left to finish what it is doing, but the request's work still waiting for the model
        is dropped at once, on the timeout or when the client goes away (its thread then
        ends after the batch running now), so abandoned work does not pile up."""

        async def disconnected() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass  # a replayed body nobody read (a GET's empty one)

        return await run_cancellable(
            work, limiter=limiter, timeout_s=state.timeout_s, disconnected=disconnected
        )

    async def committing(collection: str, work: Callable[[], T]) -> T:
        """Writes are never abandoned: a change commits whole, or not at all. A disk that is
        full or read-only refuses it with a 507 or 503 saying so."""
        try:
            return await anyio.to_thread.run_sync(work, limiter=write_limiter)
        except Exception as exc:
            code = refusals.storage_errno(exc)
            if code is None:
                raise
            raise StorageRefusedError(collection, code) from exc

    def require_key(
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
        header_key: Annotated[str | None, Depends(_API_KEY_HEADER)],
    ) -> None:
        if state.read_only:
            raise HTTPException(
                403,
                f"this server listens on {state.host} without an API key, so it serves reads "
                "only; restart it with --api-key-file FILE to take writes",
            )
        if state.api_key is None:
            return
        presented = bearer.credentials if bearer is not None else header_key
        if not key_matches(state.api_key, presented):
            raise HTTPException(
                401,
                "this endpoint needs the server's API key: send `Authorization: Bearer KEY`",
                headers={"WWW-Authenticate": "Bearer"},
            )

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
    async def collections(request: Request) -> schemas.CollectionList:
        summaries = await blocking(
            lambda: [_summary(state, n) for n in state.catalog.names], request
        )
        return schemas.CollectionList(
            collections=summaries, pipelines=sorted(state.pipelines), models=state.models.names
        )

    @app.get("/collections/{name}", tags=["collections"], responses=ERRORS)
    async def collection_info(
        request: Request, name: str = Path(pattern=NAME_PATTERN)
    ) -> dict[str, Any]:
        return await blocking(lambda: state.catalog.describe(name), request)

    @app.get(
        "/collections/{name}/documents/{doc_id:path}",
        response_model=schemas.DocumentOut,
        tags=["documents"],
        responses=ERRORS,
    )
    async def get_document(
        request: Request,
        name: str = Path(pattern=NAME_PATTERN),
        doc_id: str = Path(min_length=1, max_length=schemas.MAX_ID_CHARS),
    ) -> schemas.DocumentOut:
        return await blocking(lambda: _document(state, name, doc_id), request)

    @app.post(
        "/collections/{name}/documents",
        response_model=schemas.ChangeOut,
        tags=["documents"],
        responses=WRITE_ERRORS,
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
        report = await committing(name, lambda: served.change(**{body.mode: documents}))
        return _change(report)

    @app.post(
        "/collections/{name}/delete",
        response_model=schemas.ChangeOut,
        tags=["documents"],
        responses=WRITE_ERRORS,
        dependencies=[Depends(require_key)],
    )
    async def delete_documents(
        body: schemas.DocumentsDelete, name: str = Path(pattern=NAME_PATTERN)
    ) -> schemas.ChangeOut:
        served = state.catalog[name]
        report = await committing(name, lambda: served.change(delete=body.ids))
        return _change(report)

    @app.post(
        "/search",
        response_model=schemas.SearchResponse,
        response_model_exclude_unset=True,
        tags=["search"],
        responses=POST_ERRORS,
    )
    async def search(body: schemas.SearchRequest, request: Request) -> schemas.SearchResponse:
        """One query or a batch, by the collection's retriever, another, or a pipeline."""
        served = state.catalog[body.collection]
        pipeline = requested_pipeline(state.pipelines, body.pipeline)
        queries = body.queries if body.queries is not None else [body.query or ""]
        fields = body.fields or list(schemas.HIT_FIELDS)
        started = anyio.current_time()

        def run() -> schemas.SearchResponse:
            with (
                served.snapshot() as collection,
                partial_results(body.allow_partial) as report,
            ):
                searcher = collection.searcher(body.retriever, pipeline=pipeline)
                weighed = None
                if body.explain:
                    found, weighed = searcher.search_explained(queries, body.k, body.filter)
                else:
                    found = searcher.search(queries, body.k, body.filter)
                retriever = pipeline.name if pipeline else body.retriever
                retriever = retriever or collection.manifest.retriever
            # Built here, on the worker thread: a big answer never stalls the event loop.
            results = [
                schemas.QueryResult(
                    query=query,
                    hits=[schemas.Hit(**{f: getattr(h, f) for f in fields}) for h in hits],
                )
                for query, hits in zip(queries, found, strict=True)
            ]
            if body.highlight:
                highlight_hits(results, collection.manifest.lexical)
            if weighed is not None:
                for result, lists in zip(results, weighed, strict=True):
                    result.weights = [_list_weight(part) for part in lists]
            answer = schemas.SearchResponse(
                collection=body.collection, retriever=retriever, results=results, took_ms=0.0
            )
            if report is not None and report.shards:  # searched by shards that may be down
                answer.shards = schemas.ShardsAnswered(
                    answered=report.answered, missing=sorted(report.missing)
                )
            return answer

        answer = await blocking(run, request)
        answer.took_ms = round((anyio.current_time() - started) * 1000, 2)
        return answer

    @app.post(
        "/v1/embeddings",
        response_model=schemas.EmbeddingsResponse,
        tags=["embeddings"],
        responses=POST_ERRORS,
    )
    async def embeddings(
        body: schemas.EmbeddingsRequest, request: Request
    ) -> schemas.EmbeddingsResponse:
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

        return await blocking(run, request)

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
        widest = max(state.models.dimensions.values(), default=None)
        return served_spec(default_openapi(), widest=widest, keyed=state.api_key is not None)

    app.openapi = openapi  # type: ignore[method-assign]

    if state.allowed_origins:  # their pages may read the answers, too
        app.add_middleware(
            CORSMiddleware,
            allow_origins=state.allowed_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Authorization", "X-API-Key"],
        )
    # Outside in: count, answer this machine's names only (on loopback), turn other sites away
    # unread, read the body (bounded), then cap the requests being handled.
    bounded = InFlightLimit(app, state.threads * 8)
    body = BodyLimit(bounded, state.max_body_bytes, state.limits.body_timeout_s)
    guarded = CrossSiteGuard(body, state.allowed_origins, lambda scope: _routed(app, scope))
    if is_loopback(state.host):  # no DNS rebinding: only this machine's names are answered
        guarded = LoopbackHostGuard(guarded, state.allowed_origins)
    return RequestMetrics(guarded, state.metrics, lambda scope: _route_template(app, scope))


def _route_template(app: FastAPI, scope: dict[str, Any]) -> str | None:
    """The path template of the endpoint that takes this method at this path, if any."""
    for route in app.router.routes:
        if route.matches(scope)[0] is Match.FULL:
            return getattr(route, "path", None)
    return None


def _routed(app: FastAPI, scope: dict[str, Any]) -> bool:
    """Whether an endpoint takes this method at this path."""
    return _route_template(app, scope) is not None


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


def _list_weight(part: Any) -> schemas.ListWeight:
    scale = part.scale
    return schemas.ListWeight(
        retriever=part.retriever,
        candidates=part.candidates,
        weight=part.weight,
        share=part.share,
        center=None if scale is None else scale.center,
        spread=None if scale is None else scale.spread,
    )


def _encode_vector(vector: np.ndarray, encoding: str) -> list[float] | str:
    if encoding == "base64":  # what the openai client asks for: little-endian float32 bytes
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")
    return [float(x) for x in vector]


def _page() -> str:
    return resources.files("densekit.serve").joinpath("static/index.html").read_text("utf-8")


def _version() -> str:
    from densekit.version import __version__

    return __version__
