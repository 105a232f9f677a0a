"""Approximate indexes against exact search on small structured data, saving, and bad specs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import clustered

from densekit.errors import CollectionError, InputError
from densekit.index import FlatIndex
from densekit.index.ann import INDEX_FILE, AnnIndex
from densekit.index.spec import parse_spec
from densekit.index.vectors import PassageGroups, ShardedVectors

DIM = 64


@pytest.fixture(scope="module")
def data() -> tuple[list[np.ndarray], np.ndarray]:
    vectors = clustered(3000, seed=1)
    shards = [vectors[:1024], vectors[1024:2048], vectors[2048:]]
    return shards, clustered(40, seed=2)


def recall(index, exact: FlatIndex, queries: np.ndarray, k: int = 10) -> float:
    found, _ = index.search(queries, k)
    truth, _ = exact.search(queries, k)
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def build(spec: str, shards: list[np.ndarray], offsets: np.ndarray | None = None) -> AnnIndex:
    vectors = ShardedVectors(shards)
    return AnnIndex.build(spec, vectors, PassageGroups(vectors.rows, offsets))


@pytest.mark.parametrize(
    ("spec", "minimum"),
    [
        ("Flat", 1.0),
        ("HNSW32", 0.95),
        ("IVF16,Flat(nprobe=16)", 1.0),
        ("IVF16,Flat(nprobe=4)", 0.8),
        ("int8+rescore*4", 0.99),
        ("binary+rescore*10", 0.85),  # 64 bits only: coarse
        ("PQ16+rescore*10", 0.95),
        ("IVF16,PQ16(nprobe=8)+rescore*10", 0.9),
        ("OPQ16,IVF16,PQ16(nprobe=8)+rescore*10", 0.9),
        ("dim32:flat+rescore*8", 0.95),
        ("dim32:HNSW16+rescore*8", 0.9),
    ],
)
def test_each_spec_finds_the_exact_neighbours(data, spec: str, minimum: float) -> None:
    shards, queries = data
    index = build(spec, shards)
    assert index.rows == index.documents == 3000
    assert recall(index, FlatIndex(shards), queries) >= minimum


def test_rescored_scores_are_exact_inner_products(data) -> None:
    shards, queries = data
    vectors = np.concatenate(shards)
    rows, scores = build("binary+rescore*8", shards).search(queries, 5)
    expected = np.einsum("qd,qkd->qk", queries, vectors[rows])
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(scores, axis=1) <= 1e-7)  # best first


def test_passages_are_grouped_into_distinct_documents(data) -> None:
    shards, queries = data
    offsets = np.arange(0, 3001, 3)  # 1000 documents of three passages each
    index = build("HNSW32+rescore*2", shards, offsets)
    exact = FlatIndex(shards, offsets)
    rows, scores = index.search(queries, 10)
    assert index.documents == 1000
    assert all(len(set(r)) == 10 for r in rows)
    # A document scores its best passage among the candidates: at most its exact score.
    exact_scores = np.take_along_axis(exact.document_scores(queries), rows, 1)
    assert np.all(scores <= exact_scores + 1e-5)
    assert np.mean(np.isclose(scores, exact_scores, rtol=1e-5)) > 0.95
    assert recall(index, exact, queries) >= 0.95


def test_query_time_settings_trade_recall(data) -> None:
    shards, queries = data
    index = build("IVF32,Flat(nprobe=1)", shards)
    exact = FlatIndex(shards)
    narrow = recall(index, exact, queries)
    found, _ = index.search(queries, 10, nprobe=32)
    truth, _ = exact.search(queries, 10)
    assert np.array_equal(np.sort(found, axis=1), np.sort(truth, axis=1))
    assert narrow < 1.0
    with pytest.raises(InputError, match="efSearch"):
        index.search(queries, 10, efSearch=64)


@pytest.mark.parametrize(
    "spec", ["IVF16,PQ16(nprobe=8)+rescore*4", "binary(learned=1,bits=32)+rescore*2"]
)
def test_saved_index_reopens_with_the_same_answers(data, tmp_path: Path, spec: str) -> None:
    shards, queries = data
    index = build(spec, shards)
    record = index.save(tmp_path)
    vectors = ShardedVectors(shards)
    reopened = AnnIndex.load(
        tmp_path / record["file"],
        index.spec,
        vectors,
        PassageGroups(vectors.rows, None),
        rows=record["rows"],
        digest=record["digest"],
    )
    assert reopened.spec == spec
    for a, b in zip(index.search(queries, 10), reopened.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_an_index_file_from_another_build_is_refused(data, tmp_path: Path) -> None:
    shards, _ = data
    record = build("binary", shards).save(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    flipped = [-shard for shard in shards]
    build("binary", flipped).save(other)
    (other / INDEX_FILE).replace(tmp_path / INDEX_FILE)
    vectors = ShardedVectors(shards)
    with pytest.raises(CollectionError, match="not the index this collection was built with"):
        AnnIndex.load(
            tmp_path / INDEX_FILE,
            "binary",
            vectors,
            PassageGroups(vectors.rows, None),
            rows=record["rows"],
            digest=record["digest"],
        )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("IVF4096,Flat", "needs at least 4096 vectors to train"),
        ("PQ16x10", "needs at least 1024 vectors"),
        ("PQ7", "must divide the 64 dimensions"),
        ("Nonsense12", "FAISS cannot build"),
        ("dim128:HNSW32", "exceeds the model's 64 dimensions"),
    ],
)
def test_specs_faiss_would_reject_get_clear_errors(spec: str, message: str) -> None:
    shards = [clustered(600, seed=3)]
    with pytest.raises(InputError, match=message):
        build(spec, shards)


@pytest.mark.parametrize(
    "spec", ["HNSW32", "IVF16,Flat(nprobe=4)", "binary+rescore*10", "int8", "PQ16+rescore*10"]
)
def test_deleted_rows_are_skipped_and_lists_stay_full(data, spec: str) -> None:
    shards, queries = data
    vectors = ShardedVectors(shards)
    deleted = np.zeros(vectors.rows, dtype=bool)
    exact_all, _ = FlatIndex(shards).search(queries, 10)
    deleted[np.unique(exact_all[:, :8])] = True  # the best hits of every query are gone
    deleted[::3] = True
    groups = PassageGroups(vectors.rows, None, deleted)
    index = AnnIndex(parse_spec(spec), build(spec, shards).codes, vectors, groups)
    found, _ = index.search(queries, 10)
    assert (found >= 0).all() and not deleted[found].any()
    exact = FlatIndex(shards, None, deleted)
    minimum = 0.6 if spec.startswith("IVF") else 0.8
    assert recall(index, exact, queries) >= minimum


def test_deleted_passages_take_their_documents_out_of_grouped_results(data) -> None:
    shards, queries = data
    vectors = ShardedVectors(shards)
    offsets = np.arange(0, vectors.rows + 1, 3)  # 1000 documents of 3 passages
    deleted = np.zeros(len(offsets) - 1, dtype=bool)
    deleted[::2] = True
    groups = PassageGroups(vectors.rows, offsets, deleted)
    index = AnnIndex(parse_spec("HNSW32"), build("HNSW32", shards).codes, vectors, groups)
    found, _ = index.search(queries, 10)
    assert (found >= 0).all() and not deleted[found].any()
    exact, _ = FlatIndex(shards, offsets, deleted).search(queries, 10)
    assert np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, exact, strict=True)]) >= 0.9


@pytest.mark.parametrize("spec", ["HNSW16", "IVF16,Flat(nprobe=2)", "PQ16", "binary"])
def test_lists_stay_full_when_most_rows_are_deleted(data, spec: str) -> None:
    shards, queries = data
    vectors = ShardedVectors(shards)
    deleted = np.random.default_rng(3).random(vectors.rows) < 0.9
    groups = PassageGroups(vectors.rows, None, deleted)
    index = AnnIndex(parse_spec(spec), build(spec, shards).codes, vectors, groups)
    found, _ = index.search(queries, 100)
    # HNSW and two IVF lists reach fewer than 100 live rows here: those queries go exact.
    assert (found >= 0).all()
    assert not deleted[found].any()
    exact = FlatIndex(shards, None, deleted)
    assert recall(index, exact, queries, k=100) >= (0.5 if spec == "binary" else 0.8)
