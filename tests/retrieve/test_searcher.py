"""Searchers: a setting's pipeline over a collection, and when its models load."""

from __future__ import annotations

import zlib

import pytest
from helpers import HashingEncoder

from densekit.errors import InputError
from densekit.retrieve import Collection, Searcher
from densekit.retrieve.fusion import BM25_WEIGHT
from densekit.store import StoredCollection


def test_the_query_model_loads_at_the_first_search_not_when_the_searcher_is_made(
    hashing_collection, monkeypatch
):
    loads: list[HashingEncoder] = []

    def load(self: StoredCollection) -> HashingEncoder:
        loads.append(HashingEncoder())
        return loads[-1]

    monkeypatch.setattr(StoredCollection, "encoder", property(load))
    with Collection(hashing_collection.directory) as collection:
        searcher = collection.searcher("hybrid")
        assert loads == []
        with pytest.raises(InputError, match="query 1 is empty"):
            searcher.search(["  "], 3)  # refused without loading a model
        assert loads == []
        assert searcher.search(["salmon rivers"], 1)[0][0].id == "d4"
        searcher.search(["cats"], 1)
        assert len(loads) == 1


def test_a_searcher_made_by_hand_needs_a_query_encoder_function(hashing_collection):
    with pytest.raises(TypeError, match=r"Collection\.searcher"):
        Searcher(hashing_collection.stored, "dense")  # type: ignore[arg-type]


def test_every_list_carries_its_scale_and_a_changed_layout_keeps_it(hashing_collection):
    from densekit.retrieve.retrievers import open_retriever

    stored = hashing_collection.stored
    dense = open_retriever(stored, "dense", HashingEncoder)
    bm25 = open_retriever(stored, "bm25", HashingEncoder)
    [d], [b] = dense.retrieve(["vitamin bones"], 3), bm25.retrieve(["vitamin bones"], 3)
    sims = HashingEncoder().encode_queries(["vitamin bones"]) @ dense.reference.T
    assert d.scale is not None and d.scale.center == pytest.approx(float(sims.mean()))
    assert d.scale.spread == pytest.approx(float(sims.std()))
    assert len(dense.reference) == 5  # every document of a small collection
    assert b.scale is not None and b.scale.center == 0.0
    [ceiling] = stored.lexical_index.ceilings(["vitamin bones"])
    assert b.scale.spread == pytest.approx(float(ceiling))
    # The reference documents are chosen by a hash of their ids, not by row (a changed
    # collection searches like a fresh build: tests/store/test_changes.py).
    ids = [stored.row_ids[r] for r in stored.reference_documents(3)]
    by_hash = sorted(stored.doc_ids, key=lambda i: (zlib.crc32(i.encode()), i))
    assert ids == by_hash[:3]


def test_explain_gives_each_list_s_weight_and_share(hashing_collection):
    searcher = hashing_collection.searcher("hybrid")
    [lists] = searcher.explain(["vitamin bones"], 3)
    assert [part.retriever for part in lists] == ["dense", "bm25"]
    dense, bm25 = lists
    assert dense.weight == 1.0 and bm25.weight is not None
    assert BM25_WEIGHT.low <= bm25.weight <= BM25_WEIGHT.high
    assert sum(part.share for part in lists) == pytest.approx(1.0)
    [[alone]] = hashing_collection.searcher("bm25").explain(["vitamin bones"], 3)
    assert alone.share == 1.0 and alone.weight is None
    with pytest.raises(InputError, match="query 1 is empty"):
        searcher.explain([" "], 3)
