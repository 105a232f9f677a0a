from __future__ import annotations

import numpy as np
import pytest
from helpers import HashingEncoder
from serving import API_KEY, RunningServer

import densekit
from densekit.corpus.document import Document
from densekit.retrieve.pipeline import CandidateStage, Pipeline


def test_client_has_the_servers_verbs(server: RunningServer) -> None:
    with densekit.Client(server.url, api_key=API_KEY) as client:
        assert client.health()["status"] == "ok"
        assert [c["name"] for c in client.collections()] == ["docs"]
        assert client.models() == ["hashing"] and client.pipelines() == []
        assert client.info("docs")["documents"] == 5
        hits = client.search("docs", "vitamin D bones", k=2)
        assert {hit.id for hit in hits} == {"d3", "d5"} and hits[0].rank == 1
        batch = client.search_many("docs", ["cat", "salmon"], k=1, retriever="bm25")
        assert [h[0].id for h in batch] == ["d1", "d4"]
        (slim,) = client.search("docs", "salmon", k=1, fields=["id", "score"])
        assert slim.id == "d4" and slim.text == "" and slim.score > 0
        pipeline = Pipeline((CandidateStage("bm25", 5),), name="lexical")
        assert client.search("docs", "dogs", pipeline=pipeline)[0].id == "d2"
        [(dense, bm25)] = client.explain("docs", ["vitamin D bones"], k=2)
        assert (dense.retriever, bm25.retriever) == ("dense", "bm25")
        assert dense.share + bm25.share == pytest.approx(1.0)
        assert bm25.scale is not None and bm25.scale.center == 0.0

        vectors = client.embed(["vitamin D", "bones"], "hashing")
        np.testing.assert_allclose(
            vectors, HashingEncoder().encode_documents(["vitamin D", "bones"]), atol=1e-6
        )
        assert client.embed("vitamin D", "hashing", dimensions=8).shape == (1, 8)

        assert client.add("docs", [Document("a/b", "slash ids work", "Slash")])["added"] == 1
        assert client.document("docs", "a/b").title == "Slash"
        assert client.update("docs", [Document("a/b", "updated text")])["updated"] == 1
        assert client.upsert("docs", [Document("c", "new one")])["added"] == 1
        assert client.delete("docs", ["a/b", "c"])["documents"] == 5
        assert "densekit_requests_total" in client.metrics()


def test_client_raises_server_errors_with_status(server: RunningServer) -> None:
    with densekit.Client(server.url) as client:
        with pytest.raises(densekit.ServerError) as caught:
            client.search("nope", "x")
        assert caught.value.status == 404 and "docs" in caught.value.detail
        with pytest.raises(densekit.ServerError) as caught:
            client.add("docs", [Document("x", "needs the key")])
        assert caught.value.status == 401
    with (
        densekit.Client("http://127.0.0.1:9") as unreachable,
        pytest.raises(densekit.DensekitError, match=r"127\.0\.0\.1:9"),
    ):
        unreachable.health()
