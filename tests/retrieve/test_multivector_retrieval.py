"""Multi-vector retrieval in pipelines: as a candidate stage, as a rerank of another
retriever's candidates, fused, and across shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import QUERIES, assert_same_ranking, make_documents, write_corpus

from densekit.errors import CollectionError, InputError
from densekit.retrieve import Collection, Pipeline, build_collection, open_collection
from densekit.store import BuildOptions
from densekit.store.sharded_build import build_sharded

EVERY_TOKEN = {"per_token": 100_000}
OPTIONS = BuildOptions(retriever="bm25", multivector="minilm", progress=False, cache_dir=None)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("mv") / "corpus.jsonl", make_documents(0, 60))


@pytest.fixture(scope="module")
def whole(corpus: Path) -> Collection:
    return build_collection(corpus, corpus.parent / "whole", OPTIONS)


def ranked(collection: Collection, k: int = 10, **search) -> list[list[tuple[str, float]]]:
    return [
        [(hit.id, hit.score) for hit in hits]
        for hits in collection.search_many(QUERIES, k, **search)
    ]


def pipeline(stages: list[str], rerank: list[dict] | None = None) -> Pipeline:
    return Pipeline.from_dict(
        {
            "candidates": [{"retriever": name, "k": 60} for name in stages],
            "rerank": rerank or [],
        }
    )


def test_bm25_candidates_reranked_by_token_vectors_are_ordered_by_maxsim(whole) -> None:
    reranked = pipeline(["bm25"], [{"kind": "multivector", "top_n": 60}])
    exhaustive = ranked(whole, k=60, retriever="multivector", **EVERY_TOKEN)
    bm25 = ranked(whole, k=60, retriever="bm25")
    for found, every, candidates in zip(
        ranked(whole, k=60, pipeline=reranked), exhaustive, bm25, strict=True
    ):
        # BM25's candidates (those holding a query word), in MaxSim order with MaxSim scores.
        kept = {doc for doc, _ in candidates}
        assert_same_ranking(found, [(doc, score) for doc, score in every if doc in kept])


def test_filters_apply_to_bm25_candidates_reranked_by_token_vectors(whole) -> None:
    reranked = pipeline(["bm25"], [{"kind": "multivector", "top_n": 60}])
    allowed = {f"d{n}" for n in range(0, 60, 2)}
    where = "id in (" + ", ".join(f"'{doc}'" for doc in sorted(allowed)) + ")"
    for hits in whole.search_many(QUERIES, 10, pipeline=reranked, where=where):
        assert hits and {hit.id for hit in hits} <= allowed
    with pytest.raises(InputError, match="filters do not apply to multivector"):
        whole.search(QUERIES[0], retriever="multivector", where=where)


def test_a_multivector_stage_fuses_with_bm25(whole) -> None:
    fused = Pipeline.from_dict(
        {
            "candidates": [{"retriever": "multivector"}, {"retriever": "bm25"}],
            "fusion": {"method": "rrf"},
        }
    )
    hits = whole.search_many(QUERIES, 5, pipeline=fused)
    assert all(len(found) == 5 for found in hits)
    lists = whole.searcher(pipeline=fused).explain(QUERIES, 5)
    assert all(w.retriever in ("multivector", "bm25") for query in lists for w in query)
    # The multivector list is calibrated by the reference documents, as dense lists are.
    assert all(query[0].scale is not None for query in lists)


def test_a_multivector_rerank_names_no_model_and_round_trips() -> None:
    with pytest.raises(InputError, match=r"rerank\[1\]\.model: a multivector rerank"):
        pipeline(["bm25"], [{"kind": "multivector", "model": "x"}])
    given = pipeline(["bm25"], [{"kind": "multivector", "top_n": 20}])
    assert Pipeline.from_dict(given.to_dict()) == given
    assert "multivector" in given.explain()


def test_a_multivector_rerank_needs_token_vectors(corpus: Path, tmp_path: Path) -> None:
    plain = build_collection(
        corpus, tmp_path / "plain", BuildOptions(retriever="bm25", progress=False, cache_dir=None)
    )
    with pytest.raises(CollectionError, match=r"rerank\[1\].*--multivector MODEL"):
        plain.search("vitamin", 3, pipeline=pipeline(["bm25"], [{"kind": "multivector"}]))


def test_sharded_multivector_search_and_rerank_equal_the_unsharded(
    corpus: Path, whole, tmp_path: Path
) -> None:
    build_sharded(corpus, tmp_path / "sharded", OPTIONS, shards=3).close()
    with open_collection(tmp_path / "sharded") as sharded:
        for search in (
            {"retriever": "multivector", **EVERY_TOKEN},
            {"pipeline": pipeline(["bm25"], [{"kind": "multivector", "top_n": 60}])},
        ):
            for found, expected in zip(
                ranked(sharded, **search), ranked(whole, **search), strict=True
            ):
                assert_same_ranking(found, expected)
        # Scores are calibrated by the same reference documents as unsharded.
        mine = sharded.searcher("multivector").explain(QUERIES, 5)
        theirs = whole.searcher("multivector").explain(QUERIES, 5)
        for a, b in zip(mine, theirs, strict=True):
            assert (a[0].scale.center, a[0].scale.spread) == pytest.approx(
                (b[0].scale.center, b[0].scale.spread), rel=1e-5
            )
        assert np.isfinite(
            [hit.score for hit in sharded.search(QUERIES[0], 3, retriever="multivector")]
        ).all()
