"""Every endpoint of a real server on a loopback port: answers, bad input, auth, limits."""

from __future__ import annotations

import base64
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from helpers import HashingEncoder
from required import require
from serving import API_KEY, RunningServer, build_hashing_collection, hashing_state

from densekit.retrieve.fusion import BM25_WEIGHT

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def post(server: RunningServer, path: str, body: object, **kwargs) -> httpx.Response:
    return httpx.post(server.url + path, json=body, timeout=30, **kwargs)


def test_search_one_query_a_batch_fields_and_retrievers(server: RunningServer) -> None:
    answer = post(server, "/search", {"collection": "docs", "query": "vitamin D bones", "k": 2})
    assert answer.status_code == 200
    body = answer.json()
    assert body["retriever"] == "hybrid" and body["took_ms"] >= 0
    (result,) = body["results"]
    assert [hit["rank"] for hit in result["hits"]] == [1, 2]
    assert {hit["id"] for hit in result["hits"]} == {"d3", "d5"}
    assert set(result["hits"][0]) == {"id", "score", "rank", "title", "text", "metadata"}

    batch = post(
        server,
        "/search",
        {"collection": "docs", "queries": ["cat", "salmon"], "k": 1, "fields": ["id"]},
    ).json()
    assert [r["hits"] for r in batch["results"]] == [[{"id": "d1"}], [{"id": "d4"}]]
    lexical = post(server, "/search", {"collection": "docs", "query": "dogs", "retriever": "bm25"})
    assert lexical.json()["retriever"] == "bm25"
    assert lexical.json()["results"][0]["hits"][0]["id"] == "d2"


def test_search_highlights_the_query_s_terms_in_each_hit(server: RunningServer) -> None:
    body = {"collection": "docs", "query": "vitamins and bone", "k": 5, "highlight": True}
    hits = post(server, "/search", body).json()["results"][0]["hits"]
    by_id = {hit["id"]: hit for hit in hits}
    bones = by_id["d5"]  # "Calcium and vitamin D keep bones strong."
    words = [bones["text"][start:end] for start, end in bones["highlights"]["text"]]
    assert words == ["vitamin", "bones"]  # stems match; "and" is a stop word
    assert [bones["title"][s:e] for s, e in bones["highlights"]["title"]] == ["Bones"]
    plain = post(server, "/search", {**body, "highlight": False}).json()
    assert "highlights" not in plain["results"][0]["hits"][0]


def test_search_explains_how_each_query_s_lists_were_weighed(server: RunningServer) -> None:
    body = {"collection": "docs", "queries": ["vitamin D bones", "cat"], "explain": True}
    answer = post(server, "/search", body)
    assert answer.status_code == 200
    for result in answer.json()["results"]:
        dense, bm25 = result["weights"]
        assert (dense["retriever"], bm25["retriever"]) == ("dense", "bm25")
        assert dense["share"] + bm25["share"] == pytest.approx(1.0)
        assert dense["weight"] == 1.0
        assert BM25_WEIGHT.low <= bm25["weight"] <= BM25_WEIGHT.high
        assert bm25["center"] == 0.0 and bm25["spread"] > 0  # the query's BM25 ceiling
    plain = post(server, "/search", {"collection": "docs", "query": "cat"}).json()
    assert "weights" not in plain["results"][0]


def test_inline_pipelines_run_and_may_not_name_new_models(server: RunningServer) -> None:
    pipeline = {
        "candidates": [{"retriever": "dense", "k": 5}, {"retriever": "bm25", "k": 5}],
        "fusion": {"method": "rrf"},
    }
    answer = post(server, "/search", {"collection": "docs", "query": "cat", "pipeline": pipeline})
    assert answer.status_code == 200 and answer.json()["retriever"] == "inline"
    pipeline["rerank"] = [{"model": "/etc/some-model", "top_n": 3}]
    refused = post(server, "/search", {"collection": "docs", "query": "cat", "pipeline": pipeline})
    assert refused.status_code == 400 and "not one this server serves" in refused.json()["detail"]
    unknown = post(server, "/search", {"collection": "docs", "query": "cat", "pipeline": "nope"})
    assert unknown.status_code == 404
    bad = post(server, "/search", {"collection": "docs", "query": "x", "pipeline": {"fusion": 1}})
    assert bad.status_code == 400 and "pipeline" in bad.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"collection": "docs", "query": "x", "k": 0}, 422),
        ({"collection": "docs", "query": "x", "k": 100_000}, 422),
        ({"collection": "docs", "query": "x", "queries": ["y"]}, 422),
        ({"collection": "docs"}, 422),
        ({"collection": "docs", "query": ""}, 422),
        ({"collection": "docs", "query": "   "}, 400),
        ({"collection": "docs", "query": "x" * 5000}, 422),
        ({"collection": "docs", "queries": ["q"] * 300}, 422),
        ({"collection": "docs", "query": "x", "unknown": 1}, 422),
        ({"collection": "docs", "query": "x", "retriever": "splade"}, 400),
        ({"collection": "missing", "query": "x"}, 404),
        ({"collection": "../../etc/passwd", "query": "x"}, 422),
        ([1, 2, 3], 422),
    ],
)
def test_bad_search_requests_get_4xx_with_json(server, body, status) -> None:
    answer = post(server, "/search", body)
    assert answer.status_code == status
    assert "detail" in answer.json()


def test_malformed_json_and_oversized_bodies_are_refused(tmp_path: Path, serve_state) -> None:
    state = hashing_state(
        {"docs": build_hashing_collection(tmp_path / "docs")}, max_body_bytes=2048
    )
    url = serve_state(state)
    json_type = {"Content-Type": "application/json"}
    broken = httpx.post(url + "/search", content=b'{"collection": ', headers=json_type, timeout=10)
    assert broken.status_code == 422
    big = {"collection": "docs", "query": "x" * 4000}
    assert httpx.post(url + "/search", json=big, timeout=10).status_code == 413

    def chunks():  # no Content-Length: the limit must count the streamed bytes
        for _ in range(10):
            yield b" " * 1024

    streamed = httpx.post(url + "/search", content=chunks(), headers=json_type, timeout=10)
    assert streamed.status_code == 413
    assert httpx.get(url + "/health", timeout=10).status_code == 200


def test_collections_info_health_and_no_server_paths(server: RunningServer) -> None:
    listing = httpx.get(server.url + "/collections").json()
    assert listing["collections"] == [
        {
            "name": "docs",
            "documents": 5,
            "retrievers": ["dense", "bm25", "hybrid"],
            "default_retriever": "hybrid",
            "model": "hashing",
        }
    ]
    info = httpx.get(server.url + "/collections/docs").json()
    assert info["documents"] == 5 and "directory" not in info
    assert str(server.directory) not in httpx.get(server.url + "/collections/docs").text
    assert httpx.get(server.url + "/collections/nope").status_code == 404
    assert httpx.get(server.url + "/collections/..%2F..%2Fetc").status_code in (404, 422)
    assert httpx.get(server.url + "/health").json() == {"status": "ok", "collections": 1}


def test_embeddings_float_base64_dimensions_and_errors(server: RunningServer) -> None:
    texts = ["vitamin D and bones", "salmon swim upstream"]
    plain = post(server, "/v1/embeddings", {"model": "hashing", "input": texts}).json()
    assert plain["object"] == "list" and plain["model"] == "hashing"
    assert [item["index"] for item in plain["data"]] == [0, 1]
    vectors = np.array([item["embedding"] for item in plain["data"]], dtype=np.float32)
    np.testing.assert_allclose(vectors, HashingEncoder().encode_documents(texts), atol=1e-6)
    assert plain["usage"]["prompt_tokens"] == sum(HashingEncoder().token_lengths(texts))

    packed = post(
        server,
        "/v1/embeddings",
        {"model": "hashing", "input": texts[0], "encoding_format": "base64", "dimensions": 16},
    ).json()
    decoded = np.frombuffer(base64.b64decode(packed["data"][0]["embedding"]), dtype="<f4")
    expected = vectors[0, :16] / np.linalg.norm(vectors[0, :16])
    np.testing.assert_allclose(decoded, expected, atol=1e-6)

    too_wide = post(server, "/v1/embeddings", {"model": "hashing", "input": "x", "dimensions": 65})
    assert too_wide.status_code == 400 and "64 dimensions" in too_wide.json()["detail"]
    unknown = post(server, "/v1/embeddings", {"model": "gpt-x", "input": "x"})
    assert unknown.status_code == 404 and "hashing" in unknown.json()["detail"]
    assert post(server, "/v1/embeddings", {"model": "hashing", "input": []}).status_code == 422
    for token_ids in ([[1, 2]], [1, 2]):
        refused = post(server, "/v1/embeddings", {"model": "hashing", "input": token_ids})
        assert refused.status_code == 422
        assert "check_embedding_ctx_length=False" in refused.text
    models = httpx.get(server.url + "/v1/models").json()
    assert [(m["id"], m["object"], m["owned_by"], m["dimensions"]) for m in models["data"]] == [
        ("hashing", "model", "densekit", 64)
    ]
    spec = httpx.get(server.url + "/openapi.json").json()
    bound = spec["components"]["schemas"]["EmbeddingsRequest"]["properties"]["dimensions"]
    assert {"type": "integer", "minimum": 1, "maximum": 64} in bound["anyOf"]
    assert models["data"][0]["created"] > 1_600_000_000


def test_the_official_openai_client_works_unchanged(server: RunningServer) -> None:
    openai = require("openai")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused")
    answer = client.embeddings.create(model="hashing", input=["vitamin D", "bones"])
    vectors = np.array([item.embedding for item in answer.data], dtype=np.float32)
    np.testing.assert_allclose(
        vectors, HashingEncoder().encode_documents(["vitamin D", "bones"]), atol=1e-6
    )


def test_writes_need_the_key_and_commit_atomically(server: RunningServer) -> None:
    new = {"documents": [{"id": "d6", "text": "Comets have icy tails.", "title": "Comets"}]}
    path = "/collections/docs/documents"
    assert post(server, path, new).status_code == 401
    wrong = post(server, path, new, headers={"Authorization": "Bearer wrong-key-000000000"})
    assert wrong.status_code == 401 and "WWW-Authenticate" in wrong.headers
    assert post(server, path, new, headers={"X-API-Key": API_KEY}).json()["added"] == 1

    fetched = httpx.get(server.url + "/collections/docs/documents/d6").json()
    assert fetched == {
        "id": "d6",
        "text": "Comets have icy tails.",
        "title": "Comets",
        "metadata": {},
    }
    hits = post(server, "/search", {"collection": "docs", "query": "icy comets", "k": 1}).json()
    assert hits["results"][0]["hits"][0]["id"] == "d6"

    again = post(server, path, {**new, "mode": "add"}, headers=AUTH)
    assert again.status_code == 409 and "d6" in again.json()["detail"]
    missing = post(
        server, path, {"documents": [{"id": "zz", "text": "t"}], "mode": "update"}, headers=AUTH
    )
    assert missing.status_code == 404
    for blank_text in ("   ", "\x1c\x85", "\u2028\t"):  # blank to Python's str.strip
        blank = post(server, path, {"documents": [{"id": "b", "text": blank_text}]}, headers=AUTH)
        assert blank.status_code == 422, blank_text
    deleted = post(server, "/collections/docs/delete", {"ids": ["d6", "d1"]}, headers=AUTH)
    assert deleted.status_code == 200 and deleted.json()["documents"] == 4
    assert httpx.get(server.url + "/collections/docs/documents/d6").status_code == 404
    assert post(server, "/collections/docs/delete", {"ids": ["d6"]}).status_code == 401


def test_without_a_key_writes_are_open(tmp_path: Path, serve_state) -> None:
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")}, api_key=None)
    url = serve_state(state)
    answer = httpx.post(
        url + "/collections/docs/documents", json={"documents": [{"id": "n", "text": "new"}]}
    )
    assert answer.status_code == 200


def test_metrics_count_requests_errors_and_batches(server: RunningServer) -> None:
    post(server, "/search", {"collection": "docs", "query": "cat"})
    post(server, "/search", {"collection": "nope", "query": "cat"})
    text = httpx.get(server.url + "/metrics").text
    assert 'densekit_requests_total{method="POST",route="/search",status="200"} 1.0' in text
    assert 'densekit_errors_total{route="/search",status="404"} 1.0' in text
    assert 'densekit_request_seconds_bucket{le="0.5",route="/search"}' in text
    assert 'densekit_encode_batch_size_count{model="hashing"}' in text
    assert "process_resident_memory_bytes" in text and "python_info" in text


def test_metrics_name_the_route_of_a_request_refused_before_routing(server: RunningServer) -> None:
    # curl -d sends form-encoded bodies: refused (415) before the router sees the request.
    refused = httpx.post(
        server.url + "/search",
        content=b'{"collection": "docs", "query": "cat"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 415
    httpx.post(server.url + "/no/such/endpoint", json={})
    text = httpx.get(server.url + "/metrics").text
    assert 'densekit_requests_total{method="POST",route="/search",status="415"} 1.0' in text
    assert 'densekit_requests_total{method="POST",route="unmatched",status="404"} 1.0' in text


def test_a_slow_request_gets_a_503_not_a_hang(tmp_path: Path, serve_state) -> None:
    class Slow(HashingEncoder):
        def encode_queries(self, texts, *, progress=False):
            time.sleep(1.0)
            return super().encode_queries(texts)

    from densekit.serve.catalog import Catalog
    from densekit.serve.metrics import ServerMetrics
    from densekit.serve.models import BatchSettings, ModelPool
    from densekit.serve.state import ServerState

    models = ModelPool(BatchSettings())
    models.add(Slow())
    catalog = Catalog({"docs": build_hashing_collection(tmp_path / "docs")}, models)
    url = serve_state(ServerState(catalog, models, ServerMetrics(), timeout_s=0.2))
    answer = httpx.post(url + "/search", json={"collection": "docs", "query": "cat"}, timeout=10)
    assert answer.status_code == 503 and "longer than 0.2 s" in answer.json()["detail"]


def test_searches_go_on_while_a_writer_adds_and_deletes(server: RunningServer) -> None:
    errors: list[str] = []
    stop = threading.Event()

    def reader() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                answer = client.post("/search", json={"collection": "docs", "query": "vitamin"})
                if answer.status_code != 200:
                    errors.append(answer.text)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    for thread in readers:
        thread.start()
    for round_ in range(8):
        added = [{"id": f"w{round_}-{i}", "text": f"written text {round_} {i}"} for i in range(3)]
        assert (
            post(
                server, "/collections/docs/documents", {"documents": added}, headers=AUTH
            ).status_code
            == 200
        )
        gone = {"ids": [f"w{round_}-0"]}
        assert post(server, "/collections/docs/delete", gone, headers=AUTH).status_code == 200
    stop.set()
    for thread in readers:
        thread.join()
    assert errors == []
    from densekit.retrieve import Collection

    with Collection(server.directory) as collection:
        expected = {f"d{i}" for i in range(1, 6)} | {f"w{r}-{i}" for r in range(8) for i in (1, 2)}
        assert sorted(collection.doc_ids) == sorted(expected)


def test_a_change_by_another_writer_is_served_without_a_restart(server: RunningServer) -> None:
    from densekit.corpus.document import Document
    from densekit.store import update_collection

    assert post(server, "/search", {"collection": "docs", "query": "comets"}).status_code == 200
    update_collection(
        server.directory, add=[Document("ext", "comets from outside")], encoder=HashingEncoder()
    )
    hits = post(server, "/search", {"collection": "docs", "query": "comets", "k": 1}).json()
    assert hits["results"][0]["hits"][0]["id"] == "ext"


def test_oversized_metadata_and_inline_pipelines_are_refused(server: RunningServer) -> None:
    nested: dict = {}
    inner = nested
    for _ in range(40):
        inner["x"] = {}
        inner = inner["x"]
    deep = {"documents": [{"id": "m", "text": "t", "metadata": nested}]}
    answer = post(server, "/collections/docs/documents", deep, headers=AUTH)
    assert answer.status_code == 422 and "nested deeper" in answer.text
    huge = {"candidates": [{"retriever": "bm25", "k": 100_000}]}
    refused = post(server, "/search", {"collection": "docs", "query": "x", "pipeline": huge})
    assert refused.status_code == 400 and "at most 1000" in refused.json()["detail"]


def test_loopback_servers_refuse_foreign_host_headers(tmp_path: Path, serve_state) -> None:
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")})
    url = serve_state(state)
    assert httpx.get(url + "/health").status_code == 200
    rebound = httpx.get(url + "/health", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400 and "not to this machine" in rebound.json()["detail"]


def test_requests_after_shutdown_get_503(server: RunningServer) -> None:
    server.state.catalog.close()
    answer = post(server, "/search", {"collection": "docs", "query": "cat"})
    assert answer.status_code == 503 and "shutting down" in answer.json()["detail"]
