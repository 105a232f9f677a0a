"""Filtered search on real collections: every retriever, fusion and sharding give what an
exhaustive ranking gives once the documents outside the filter are struck out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_same_ranking
from required import require

import densekit
from densekit.errors import InputError
from densekit.evaluate import evaluate
from densekit.store import BuildOptions
from densekit.store.sharded_build import build_sharded

TOPICS = ["biology", "medicine", "chemistry"]


def with_metadata(scifact_part, folder: Path, count: int = 150) -> tuple[Path, dict]:
    """The first ``count`` SciFact abstracts with a year, topics and a flag as extra fields."""
    corpus, _ = scifact_part
    records, metadata = [], {}
    for number, line in enumerate(corpus.read_text(encoding="utf-8").splitlines()[:count]):
        record = json.loads(line)
        extra = {
            "year": 1990 + number % 30,
            "topics": [TOPICS[number % 3], TOPICS[(number // 3) % 3]],
            "reviewed": number % 4 == 0,
        }
        records.append({**record, **extra})
        metadata[record["_id"]] = extra
    out = folder / "corpus.jsonl"
    out.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return out, metadata


@pytest.fixture(scope="module")
def collection(scifact_part, tmp_path_factory):
    require("static_model")
    folder = tmp_path_factory.mktemp("filtered")
    corpus, metadata = with_metadata(scifact_part, folder)
    options = BuildOptions(
        model="static", retriever="hybrid", sparse="splade-tiny", progress=False, cache_dir=None
    )
    with densekit.build_collection(corpus, folder / "c", options) as built:
        yield built, metadata, scifact_part[1][:12]


def allowed_ids(metadata: dict, test) -> set[str]:
    return {doc_id for doc_id, extra in metadata.items() if test(extra)}


FILTERS = {
    "year >= 2015": lambda m: m["year"] >= 2015,
    "topics = 'chemistry' and not reviewed = true": lambda m: (
        "chemistry" in m["topics"] and not m["reviewed"]
    ),
    "year in (1990, 2001) or topics not in ('biology')": lambda m: (
        m["year"] in (1990, 2001) or "biology" not in m["topics"]
    ),
}


@pytest.mark.parametrize("retriever", ["dense", "bm25", "splade", "hybrid"])
@pytest.mark.parametrize("where", list(FILTERS))
def test_filtered_search_is_the_full_ranking_without_the_other_documents(
    collection, retriever: str, where: str
) -> None:
    built, metadata, queries = collection
    allowed = allowed_ids(metadata, FILTERS[where])
    searcher = built.searcher(retriever)
    everything = searcher.search(queries, len(built))
    for query, found in zip(queries, searcher.search(queries, 10, where), strict=True):
        assert {hit.id for hit in found} <= allowed, query
        struck = [hit for hit in everything[queries.index(query)] if hit.id in allowed][:10]
        assert len(found) == min(10, len(struck))
        if retriever == "hybrid":
            # A document missing from one fused list scores from that list's tail, which the
            # filter changes: the same documents, not the same scores.
            assert len({h.id for h in found} & {h.id for h in struck}) >= 7
        else:
            assert_same_ranking(
                [(h.id, h.score) for h in found], [(h.id, h.score) for h in struck], rel=1e-5
            )
        assert all(hit.metadata == metadata[hit.id] for hit in found)


def test_bad_filters_are_refused_before_any_search(collection) -> None:
    built, _, queries = collection
    with pytest.raises(InputError, match="no document has a field yaer; their fields: "):
        built.search(queries[0], where="yaer > 2000")
    with pytest.raises(InputError, match="year holds numbers, never text"):
        built.search(queries[0], where="year >= '2000'")
    with pytest.raises(InputError, match="column 7: expected a value"):
        built.search(queries[0], where="year >")


def test_a_filter_nothing_matches_finds_nothing(collection) -> None:
    built, _, queries = collection
    for retriever in ("dense", "bm25", "hybrid"):
        assert built.search(queries[0], retriever=retriever, where="year > 3000") == []


def test_evaluation_searches_only_the_filtered_documents(collection, tmp_path: Path) -> None:
    built, metadata, _ = collection
    dataset = tmp_path / "data"
    (dataset / "qrels").mkdir(parents=True)
    documents = sorted(metadata)
    reviewed = [doc_id for doc_id in documents if metadata[doc_id]["reviewed"]][:5]
    queries = [
        {"_id": f"q{n}", "text": built.documents.get(doc_id).title}
        for n, doc_id in enumerate(reviewed)
    ]
    (dataset / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    qrels = "".join(f"q{n}\t{doc_id}\t1\n" for n, doc_id in enumerate(reviewed))
    (dataset / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    (dataset / "corpus.jsonl").write_text("")  # the collection is given
    kept = evaluate(dataset, collection=built, retriever="bm25", where="reviewed = true")
    struck = evaluate(dataset, collection=built, retriever="bm25", where="reviewed = false")
    assert kept.metrics["R@100"] == 1.0
    assert struck.metrics["R@100"] == 0.0
    assert all(metadata[doc]["reviewed"] for hits in kept.run.values() for doc, _ in hits)


def test_a_sharded_collection_filters_as_the_unsharded_one(scifact_part, tmp_path: Path) -> None:
    require("static_model")
    corpus, metadata = with_metadata(scifact_part, tmp_path, count=240)
    # Years 2015+ only in some shards' documents would still be checked across all shards.
    options = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)
    queries = scifact_part[1][:10]
    with (
        densekit.build_collection(corpus, tmp_path / "whole", options) as whole,
        build_sharded(corpus, tmp_path / "sharded", options, shards=3),
        densekit.open_collection(tmp_path / "sharded") as sharded,
    ):
        for retriever in ("dense", "bm25", "hybrid"):
            where = "year < 2000 and topics = 'medicine'"
            expected = whole.searcher(retriever).search(queries, 10, where)
            found = sharded.searcher(retriever).search(queries, 10, where)
            for mine, theirs in zip(found, expected, strict=True):
                assert_same_ranking(
                    [(h.id, h.score) for h in mine], [(h.id, h.score) for h in theirs], rel=1e-5
                )
                assert all(metadata[h.id]["year"] < 2000 for h in mine)
        with pytest.raises(InputError, match="no document has a field colour"):
            sharded.search(queries[0], where="colour = 'red'")
