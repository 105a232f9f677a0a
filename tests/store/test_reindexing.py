"""Reindexing a collection: another dense index over the stored vectors, in one atomic commit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HashingEncoder, make_documents, write_corpus

from densekit.errors import CollectionError, InputError
from densekit.index.learned_binary import BinaryHead, head_of
from densekit.retrieve import Collection, build_collection, open_collection
from densekit.store import BuildOptions, compact_collection, update_collection
from densekit.store.integrity import verify_collection
from densekit.store.reindexing import reindex_collection
from densekit.store.sharded_build import build_sharded

QUERIES = ["topic 3 words", "topic 7 more words", "nothing in particular"]
LEARNED = "binary(learned=1,bits=32)+rescore*4"


def build(tmp_path: Path, name: str, index: str = "flat", count: int = 400) -> Collection:
    corpus = write_corpus(tmp_path / f"{name}.jsonl", make_documents(0, count))
    options = BuildOptions(retriever="hybrid", index=index, progress=False, cache_dir=None)
    collection = build_collection(corpus, tmp_path / name, options, encoder=HashingEncoder())
    return collection.with_encoder(HashingEncoder())


def hits(collection: Collection, retriever: str = "dense") -> list[list[tuple[str, float]]]:
    return [
        [(hit.id, round(hit.score, 5)) for hit in collection.search(query, 10, retriever=retriever)]
        for query in QUERIES
    ]


def reopened(directory: Path) -> Collection:
    return open_collection(directory).with_encoder(HashingEncoder())


def test_a_reindexed_collection_searches_as_one_built_with_that_index(tmp_path: Path) -> None:
    flat = build(tmp_path, "c")
    before = {retriever: hits(flat, retriever) for retriever in ("dense", "bm25")}
    manifest = reindex_collection(tmp_path / "c", LEARNED)
    assert manifest.dense is not None and manifest.dense.index == LEARNED
    assert manifest.stats["reindexed"] == {"from": "flat", "to": LEARNED}
    built = build(tmp_path, "fresh", index=LEARNED)
    assert hits(reopened(tmp_path / "c")) == hits(built)
    assert hits(reopened(tmp_path / "c"), "bm25") == before["bm25"]  # the rest is untouched

    reindex_collection(tmp_path / "c", "flat")
    again = reopened(tmp_path / "c")
    assert hits(again) == before["dense"]
    assert not list((tmp_path / "c").glob("gen-*/index.faiss"))  # no manifest names it now


def test_the_stored_vectors_are_shared_not_copied(tmp_path: Path) -> None:
    build(tmp_path, "c")
    shards = sorted((tmp_path / "c").glob("gen-*/embeddings/*.npy"))
    manifest = reindex_collection(tmp_path / "c", "HNSW16")
    assert sorted((tmp_path / "c").glob("gen-*/embeddings/*.npy")) == shards
    assert manifest.dense is not None
    assert all(not shard.startswith(manifest.generation) for shard in manifest.dense.shards)
    report = verify_collection(tmp_path / "c", open_check=True)
    assert not report.damaged and not report.unrecorded and report.verified == report.files


def test_a_given_head_codes_the_index_and_survives_changes(tmp_path: Path) -> None:
    build(tmp_path, "c")
    rng = np.random.default_rng(0)
    head = BinaryHead(rng.normal(size=(64, 16)).astype(np.float32), np.zeros(16, np.float32))
    manifest = reindex_collection(tmp_path / "c", "binary(learned=1)", head=head)
    assert manifest.dense is not None and manifest.dense.index == "binary(learned=1,bits=16)"

    def stored_head() -> BinaryHead:
        collection = reopened(tmp_path / "c")
        return head_of(collection.stored.dense_index.codes.index)

    np.testing.assert_array_equal(stored_head().projection, head.projection)
    update_collection(tmp_path / "c", add=make_documents(400, 20), encoder=HashingEncoder())
    update_collection(tmp_path / "c", delete=[f"d{i}" for i in range(50)])
    compact_collection(tmp_path / "c")
    np.testing.assert_array_equal(stored_head().projection, head.projection)
    collection = reopened(tmp_path / "c")
    assert len(collection) == 370 and len(collection.search("topic 3", 10)) == 10


def test_a_head_for_other_vectors_is_refused(tmp_path: Path) -> None:
    build(tmp_path, "c")
    head = BinaryHead(np.ones((32, 16), np.float32), np.zeros(16, np.float32))
    with pytest.raises(InputError, match="32-dimensional vectors, index"):
        reindex_collection(tmp_path / "c", "binary(learned=1)", head=head)
    with pytest.raises(InputError, match="codes binary\\(learned=1\\) indexes"):
        reindex_collection(tmp_path / "c", "HNSW16", head=head)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["dense"]["index"] == "flat"  # nothing was written


def test_collections_it_cannot_reindex_are_refused(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", make_documents(0, 50))
    bm25 = BuildOptions(retriever="bm25", progress=False, cache_dir=None)
    build_collection(corpus, tmp_path / "lexical", bm25)
    with pytest.raises(CollectionError, match="no dense vectors to index"):
        reindex_collection(tmp_path / "lexical", "HNSW16")
    build_sharded(corpus, tmp_path / "sharded", bm25, shards=2)
    with pytest.raises(InputError, match="reindex each of its shards"):
        reindex_collection(tmp_path / "sharded", "HNSW16")
    with pytest.raises(InputError, match="Grammar"):
        reindex_collection(tmp_path / "lexical", "HNSW16+rescore*x")


def test_deleted_documents_stay_deleted_through_a_reindex(tmp_path: Path) -> None:
    build(tmp_path, "c")
    gone = {f"d{i}" for i in range(0, 400, 3)}
    update_collection(tmp_path / "c", delete=sorted(gone))
    manifest = reindex_collection(tmp_path / "c", LEARNED)
    assert manifest.deleted == len(gone) and manifest.tombstones is not None
    assert manifest.tombstones.startswith(manifest.generation)
    collection = reopened(tmp_path / "c")
    found = {hit[0] for query in hits(collection) for hit in query}
    assert found and not found & gone and len(collection) == 400 - len(gone)
    report = verify_collection(tmp_path / "c", open_check=True)
    assert not report.damaged and not report.unrecorded
