"""A served MVP reranker: a pipeline served by name and inline answers as the library does,
whatever order a request's candidates arrive in."""

from __future__ import annotations

from pathlib import Path

import httpx
import torch
from serving import build_hashing_collection, hashing_state

from densekit.encode.multiview_folder import new_multiview, save_multiview
from densekit.retrieve import CandidateStage, FusionConfig, Pipeline, RerankStage
from densekit.retrieve.collection import Collection


def test_an_mvp_pipeline_serves_the_library_s_ranking(tmp_path: Path, serve_state) -> None:
    from helpers import HashingEncoder

    torch.manual_seed(0)
    model = tmp_path / "mvp"
    save_multiview(new_multiview("minilm", views=2, max_length=64).eval(), model)
    directory = build_hashing_collection(tmp_path / "docs")
    stage = RerankStage(str(model), kind="mvp", top_n=5, batch=2)
    by_dense = Pipeline((CandidateStage("dense", 5),), rerank=(stage,), name="mvp")
    state = hashing_state({"docs": directory}, pipelines={"mvp": by_dense})
    url = serve_state(state)
    expected = (
        Collection(directory)
        .with_encoder(HashingEncoder())
        .search("vitamin D bones", 5, pipeline=by_dense)
    )

    named = httpx.post(
        f"{url}/search",
        json={"collection": "docs", "query": "vitamin D bones", "k": 5, "pipeline": "mvp"},
        timeout=60,
    )
    assert named.status_code == 200, named.text
    hits = named.json()["results"][0]["hits"]
    assert [(h["id"], round(h["score"], 5)) for h in hits] == [
        (h.id, round(h.score, 5)) for h in expected
    ]
    # The same five candidates (the whole collection) fused from two lists arrive in another
    # order: the same scores, since MVP scores a set of candidates, not a sequence.
    fused = {
        "candidates": [{"retriever": "dense", "k": 5}, {"retriever": "bm25", "k": 5}],
        "fusion": {"method": "rrf"},
        "rerank": [{"model": str(model), "kind": "mvp", "top_n": 5, "batch": 2}],
    }
    inline = httpx.post(
        f"{url}/search",
        json={"collection": "docs", "query": "vitamin D bones", "k": 5, "pipeline": fused},
        timeout=60,
    )
    assert inline.status_code == 200, inline.text
    scores = {h["id"]: h["score"] for h in inline.json()["results"][0]["hits"]}
    assert Pipeline.from_dict(fused).fused == FusionConfig("rrf")
    for hit in expected:
        if hit.id in scores:
            assert abs(scores[hit.id] - hit.score) < 1e-5
