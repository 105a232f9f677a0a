"""Scatter-gather search: a sharded collection ranks as the unsharded one."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import FUSED_REL, assert_same_ranking

import densekit
from densekit.retrieve import open_collection
from densekit.store import BuildOptions
from densekit.store.sharded_build import build_sharded


def same_searches(whole, sharded, queries: list[str], retriever: str, rel: float = 1e-6) -> None:
    rel = max(rel, FUSED_REL) if retriever == "hybrid" else rel
    expected = whole.searcher(retriever).search(queries, 10)
    found = sharded.searcher(retriever).search(queries, 10)
    for mine, theirs in zip(found, expected, strict=True):
        assert_same_ranking(
            [(h.id, h.score) for h in mine], [(h.id, h.score) for h in theirs], rel=rel
        )


def scales(lists) -> list[float]:
    """The calibration of a query's lists, as numbers (nan where a list has none)."""
    nan = float("nan")
    return [x for w in lists for x in (w.scale.center, w.scale.spread) if w.scale] + [
        nan for w in lists if w.scale is None
    ]


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_a_sharded_collection_ranks_and_scores_as_the_unsharded_one(
    sharded_scifact, retriever: str
) -> None:
    whole, sharded, queries = sharded_scifact
    same_searches(whole, sharded, queries, retriever)


def test_each_list_is_calibrated_as_in_the_unsharded_collection(sharded_scifact) -> None:
    whole, sharded, queries = sharded_scifact
    expected = whole.searcher("hybrid").explain(queries[:50], 10)
    found = sharded.searcher("hybrid").explain(queries[:50], 10)
    for mine, theirs in zip(found, expected, strict=True):
        assert [w.retriever for w in mine] == [w.retriever for w in theirs]
        assert scales(mine) == pytest.approx(scales(theirs), rel=1e-6, nan_ok=True)
        assert [w.share for w in mine] == pytest.approx([w.share for w in theirs], rel=1e-5)


def test_splade_lists_merge_and_calibrate_across_shards(scifact_part, tmp_path: Path) -> None:
    corpus, queries = scifact_part
    options = BuildOptions(retriever="bm25", sparse="splade-tiny", progress=False, cache_dir=None)
    with (
        densekit.build_collection(corpus, tmp_path / "whole", options) as whole,
        build_sharded(corpus, tmp_path / "sharded", options, shards=2),
        open_collection(tmp_path / "sharded") as sharded,
    ):
        # Each shard encodes its documents in batches of other neighbours, so a document's
        # SPLADE weights differ from the whole collection's in the last float32 bits (padding
        # changes the attention sums); scores then agree to a few parts in a million.
        same_searches(whole, sharded, queries[:40], "splade", rel=1e-5)
        expected = whole.searcher("splade").explain(queries[:40], 10)
        found = sharded.searcher("splade").explain(queries[:40], 10)
        for mine, theirs in zip(found, expected, strict=True):
            assert scales(mine) == pytest.approx(scales(theirs), rel=1e-5, nan_ok=True)
