"""Running pipelines on a collection: candidates, N-way fusion, reranking order, costs, errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from required import require

from densekit.errors import CollectionError, InputError
from densekit.retrieve import build_collection, pipeline_runner
from densekit.retrieve.fusion import FusionConfig, blend, reciprocal_rank_fusion
from densekit.retrieve.pipeline import CandidateStage, Pipeline, RerankStage
from densekit.store import BuildOptions

QUERIES = ["vitamin D and bones", "loyal dogs", "salmon rivers"]


@pytest.fixture
def collection(hashing_collection):
    return hashing_collection


class ShortestFirst:
    """A stand-in reranker: prefers short passages, which no first stage does."""

    name = "shortest"

    def __init__(self) -> None:
        self.pairs: list[tuple[str, str]] = []

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        self.pairs += list(pairs)
        return np.array([-len(passage) for _, passage in pairs], dtype=np.float32)


def test_one_stage_pipelines_equal_the_plain_retrievers(collection) -> None:
    for retriever in ("dense", "bm25"):
        pipeline = Pipeline((CandidateStage(retriever, 5),))
        ran = collection.searcher(pipeline=pipeline).rank(QUERIES, 5)
        plain = collection.searcher(retriever).rank(QUERIES, 5)
        for a, b in zip(ran, plain, strict=True):
            assert a.rows.tolist() == b.rows.tolist()


def test_rrf_fusion_of_two_stages(collection) -> None:
    pipeline = Pipeline(
        (CandidateStage("dense", 5), CandidateStage("bm25", 5)), FusionConfig("rrf", k=10)
    )
    ran = collection.searcher(pipeline=pipeline).rank(QUERIES, 5)
    dense = collection.searcher("dense").rank(QUERIES, 5)
    bm25 = collection.searcher("bm25").rank(QUERIES, 5)
    for got, d, b in zip(ran, dense, bm25, strict=True):
        expected = reciprocal_rank_fusion([d, b], 10)
        assert got.rows.tolist() == expected.rows.tolist()
        np.testing.assert_allclose(got.scores, expected.scores)


def test_reranking_reorders_the_top_n_and_keeps_the_rest_below(
    collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = ShortestFirst()
    monkeypatch.setattr(pipeline_runner, "load_reranker", lambda stage, where: fake)
    pipeline = Pipeline((CandidateStage("dense", 5),), rerank=(RerankStage("m", top_n=3),))
    searcher = collection.searcher(pipeline=pipeline)
    first = collection.searcher("dense").rank(QUERIES, 5)
    ran = searcher.rank(QUERIES, 5)
    documents = collection.documents
    for got, before in zip(ran, first, strict=True):
        head = documents.get_rows(got.rows[:3].tolist())
        lengths = [len(d.content) for d in head]
        assert lengths == sorted(lengths)
        assert set(got.rows[:3].tolist()) == set(before.rows[:3].tolist())
        assert got.rows[3:].tolist() == before.rows[3:].tolist()
        assert np.all(np.diff(got.scores) <= 0)
    assert len(fake.pairs) == 3 * len(QUERIES)
    rerank_cost = searcher.runner.costs[-1].to_dict()
    assert rerank_cost["passages"] == 9 and rerank_cost["ms_per_query"] is not None


def test_a_weighted_rerank_blends_with_the_incoming_scores(
    collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_runner, "load_reranker", lambda stage, where: ShortestFirst())
    stage = RerankStage("m", top_n=4, weight=0.3)
    ran = collection.searcher(pipeline=Pipeline((CandidateStage("dense", 6),), rerank=(stage,)))
    first = collection.searcher("dense").rank(QUERIES, 6)
    for got, before in zip(ran.rank(QUERIES, 6), first, strict=True):
        head_rows = before.rows[:4]
        passages = collection.documents.get_rows(head_rows.tolist())
        lengths = np.array([-len(d.content) for d in passages], dtype=np.float32)
        expected = blend(lengths, before.scores[:4], 0.3)
        order = np.argsort(-expected, kind="stable")
        assert got.rows[:4].tolist() == head_rows[order].tolist()
        np.testing.assert_allclose(got.scores[:4], expected[order], rtol=1e-6)
        assert got.rows[4:].tolist() == before.rows[4:].tolist()


def test_top_n_beyond_the_candidates_is_clamped_with_a_note(
    collection, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline_runner, "load_reranker", lambda stage, where: ShortestFirst())
    pipeline = Pipeline((CandidateStage("dense", 4),), rerank=(RerankStage("m", top_n=50),))
    searcher = collection.searcher(pipeline=pipeline)
    assert all(len(r) == 4 for r in searcher.rank(QUERIES, 10))
    assert "top_n 50 is more than the 4 candidates" in searcher.runner.notes[0]


def test_a_real_cross_encoder_reranks(collection, tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from densekit.encode import resolve_model

    model = CrossEncoder(resolve_model("minilm").location, num_labels=1, device="cpu")
    model.save_pretrained(str(tmp_path / "reranker"))
    pipeline = Pipeline(
        (CandidateStage("bm25", 5),), rerank=(RerankStage(str(tmp_path / "reranker"), top_n=5),)
    )
    hits = collection.search_many(QUERIES, 3, pipeline=pipeline)
    assert all(len(h) >= 1 for h in hits)


def test_bad_pipelines_name_their_stage(collection, tmp_path: Path) -> None:
    bm25_only = build_collection(
        collection.manifest.source,
        tmp_path / "bm25",
        BuildOptions(progress=False, retriever="bm25"),
    )
    with pytest.raises(CollectionError, match=r"candidates\[1\]: .* has no 'dense' index"):
        bm25_only.searcher(pipeline=Pipeline((CandidateStage("dense", 5),)))
    missing = Pipeline(
        (CandidateStage("bm25", 5),), rerank=(RerankStage(str(tmp_path / "nowhere")),)
    )
    with pytest.raises(InputError, match=r"rerank\[1\]: could not load the cross-encoder model"):
        collection.searcher(pipeline=missing)
    with pytest.raises(InputError, match="names its own retrievers"):
        collection.searcher("dense", pipeline=Pipeline((CandidateStage("bm25", 5),)))
    with pytest.raises(InputError, match="query 2 is empty"):
        collection.searcher(pipeline=Pipeline((CandidateStage("bm25", 5),))).rank(["dogs", "  "], 5)


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_the_llm_likelihood_reranker_prefers_the_passage_the_query_is_about(collection) -> None:
    require("gguf")

    from densekit.retrieve.rerankers import LikelihoodReranker

    reranker = LikelihoodReranker("smollm2", batch=2)
    scores = reranker.score(
        [
            ("what raises the risk of bone fractures?", "Vitamin D deficiency raises the risk."),
            ("what raises the risk of bone fractures?", "Dogs are loyal animals."),
        ]
    )
    assert scores[0] > scores[1]
    pipeline = Pipeline(
        (CandidateStage("bm25", 5),), rerank=(RerankStage("smollm2", kind="llm", top_n=3),)
    )
    hits = collection.search("why are dogs loyal?", 3, pipeline=pipeline)
    assert hits[0].id == "d2"
