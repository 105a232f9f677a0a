"""A collection written before retrieval became pipelines (manifest fusion in the hybrid
vocabulary: method, alpha, rrf_k, depth) opens and searches exactly as it did then.

tests/data/collection-format-1 was built by the densekit of that time (its make.py, run with that
version on PYTHONPATH); expected.json holds that version's top 5 for each retriever.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import densekit
from densekit.retrieve import DEFAULT_FUSION, FusionConfig

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "collection-format-1"


@pytest.fixture
def old_collection(tmp_path: Path) -> Path:
    copy = tmp_path / "collection"
    shutil.copytree(FIXTURE / "collection", copy)
    return copy


def test_the_stored_hybrid_fusion_reads_as_the_single_config(old_collection: Path) -> None:
    manifest = json.loads((old_collection / "manifest.json").read_text())
    assert manifest["fusion"] == {"alpha": 0.4, "depth": 100, "method": "convex", "rrf_k": 60}
    assert FusionConfig.stored(manifest["fusion"]) == FusionConfig.hybrid("convex", alpha=0.4)
    assert DEFAULT_FUSION.method == "calibrated"  # new collections only


@pytest.mark.parametrize("retriever", ["dense", "bm25", "hybrid"])
def test_searches_match_what_the_old_version_returned(old_collection: Path, retriever) -> None:
    expected = json.loads((FIXTURE / "expected.json").read_text())
    with densekit.open(old_collection) as collection:
        got = collection.search_many(expected["queries"], 5, retriever=retriever)
    for hits, before in zip(got, expected["results"][retriever], strict=True):
        assert [hit.id for hit in hits] == [doc_id for doc_id, _ in before]
        np.testing.assert_allclose([hit.score for hit in hits], [s for _, s in before], atol=1e-6)
