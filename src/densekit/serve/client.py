"""``densekit.Client``: the HTTP API from Python, with the same verbs as the server."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np

from densekit.corpus.document import Document
from densekit.corpus.in_memory import documents_from
from densekit.errors import DensekitError, InputError
from densekit.retrieve.pipeline import Pipeline
from densekit.retrieve.ranking import Hit, ScoreScale
from densekit.retrieve.searcher import ListWeight


class ServerError(DensekitError):
    """The server refused a request; ``status`` is its HTTP status code."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


class Client:
    """A densekit server at ``url``; ``api_key`` is sent with every request when given.

    >>> client = Client("http://127.0.0.1:8000")
    >>> client.search("scifact", "vitamin D and cancer", k=5)[0].id  # doctest: +SKIP
    """

    def __init__(self, url: str, *, api_key: str | None = None, timeout: float = 60.0) -> None:
        import httpx

        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise DensekitError(f"{self._http.base_url}{path}: {exc}") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise ServerError(response.status_code, str(detail))
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return response.text

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def collections(self) -> list[dict[str, Any]]:
        return self._call("GET", "/collections")["collections"]

    def pipelines(self) -> list[str]:
        """Names of the pipelines the server serves."""
        return self._call("GET", "/collections")["pipelines"]

    def models(self) -> list[str]:
        """Names of the models ``embed`` can use."""
        return [card["id"] for card in self._call("GET", "/v1/models")["data"]]

    def info(self, collection: str) -> dict[str, Any]:
        return self._call("GET", f"/collections/{collection}")

    def metrics(self) -> str:
        return self._call("GET", "/metrics")

    def search(
        self,
        collection: str,
        query: str,
        k: int = 10,
        *,
        retriever: str | None = None,
        pipeline: str | Pipeline | Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        where: str | None = None,
    ) -> list[Hit]:
        return self.search_many(
            collection,
            [query],
            k,
            retriever=retriever,
            pipeline=pipeline,
            fields=fields,
            where=where,
        )[0]

    def search_many(
        self,
        collection: str,
        queries: Sequence[str],
        k: int = 10,
        *,
        retriever: str | None = None,
        pipeline: str | Pipeline | Mapping[str, Any] | None = None,
        fields: Sequence[str] | None = None,
        where: str | None = None,
    ) -> list[list[Hit]]:
        """Hits per query; with ``fields`` (e.g. ``["id", "score"]``) the others are left
        empty, which keeps answers small. ``where``: only documents whose metadata match this
        filter (the request's ``filter``)."""
        answer = self._search(
            collection, queries, k, retriever, pipeline, fields=fields, where=where
        )
        return [[_hit(hit) for hit in result["hits"]] for result in answer["results"]]

    def explain(
        self,
        collection: str,
        queries: Sequence[str],
        k: int = 10,
        *,
        retriever: str | None = None,
        pipeline: str | Pipeline | Mapping[str, Any] | None = None,
    ) -> list[list[ListWeight]]:
        """For each query, how its candidate lists were weighed (``"explain": true``)."""
        answer = self._search(collection, queries, k, retriever, pipeline, ["id"], explain=True)
        return [[_list_weight(part) for part in result["weights"]] for result in answer["results"]]

    def _search(
        self,
        collection: str,
        queries: Sequence[str],
        k: int,
        retriever: str | None,
        pipeline: str | Pipeline | Mapping[str, Any] | None,
        fields: Sequence[str] | None,
        explain: bool = False,
        where: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"collection": collection, "queries": list(queries), "k": k}
        if where is not None:
            body["filter"] = where
        if fields is not None:
            body["fields"] = list(fields)
        if retriever is not None:
            body["retriever"] = retriever
        if pipeline is not None:
            body["pipeline"] = pipeline.to_dict() if isinstance(pipeline, Pipeline) else pipeline
        if explain:
            body["explain"] = True
        return self._call("POST", "/search", body)

    def embed(
        self,
        texts: str | Sequence[str],
        model: str,
        *,
        input_type: str = "document",
        dimensions: int | None = None,
    ) -> np.ndarray:
        """Vectors from ``/v1/embeddings``, one row per text, as float32."""
        body: dict[str, Any] = {
            "input": texts if isinstance(texts, str) else list(texts),
            "model": model,
            "input_type": input_type,
        }
        if dimensions is not None:
            body["dimensions"] = dimensions
        answer = self._call("POST", "/v1/embeddings", body)
        rows = sorted(answer["data"], key=lambda item: item["index"])
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)

    def document(self, collection: str, doc_id: str) -> Document:
        found = self._call("GET", f"/collections/{collection}/documents/{quote(doc_id, safe='')}")
        return Document(found["id"], found["text"], found["title"], found["metadata"])

    def add(self, collection: str, documents: Iterable[Document]) -> dict[str, Any]:
        return self._write(collection, documents, "add")

    def update(self, collection: str, documents: Iterable[Document]) -> dict[str, Any]:
        return self._write(collection, documents, "update")

    def upsert(self, collection: str, documents: Iterable[Document]) -> dict[str, Any]:
        return self._write(collection, documents, "upsert")

    def delete(self, collection: str, ids: Iterable[str]) -> dict[str, Any]:
        return self._call("POST", f"/collections/{collection}/delete", {"ids": list(ids)})

    def _write(self, collection: str, documents: Iterable[Document], mode: str) -> dict[str, Any]:
        """``documents``: Documents or dicts (or a DataFrame: :mod:`densekit.corpus.in_memory`)."""
        if isinstance(documents, Document | str):
            raise InputError(f"{mode} takes a list of documents; wrap the single one in a list")
        payload = [
            {"id": d.id, "text": d.text, "title": d.title, "metadata": dict(d.metadata)}
            for d in documents_from(documents, what=mode)
        ]
        return self._call(
            "POST", f"/collections/{collection}/documents", {"documents": payload, "mode": mode}
        )


def _hit(fields: Mapping[str, Any]) -> Hit:
    return Hit(
        id=fields.get("id", ""),
        score=fields.get("score", 0.0),
        rank=fields.get("rank", 0),
        title=fields.get("title", ""),
        text=fields.get("text", ""),
        metadata=fields.get("metadata") or {},
    )


def _list_weight(fields: Mapping[str, Any]) -> ListWeight:
    spread = fields.get("spread")
    scale = None if spread is None else ScoreScale(fields["center"], spread)
    return ListWeight(
        fields["retriever"], fields["candidates"], fields["weight"], fields["share"], scale
    )
