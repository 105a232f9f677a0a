"""Collections with an approximate index: build, reopen, search, refuse a foreign index file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.errors import CollectionError, InputError
from densekit.retrieve import Collection, build_collection, open_collection
from densekit.store import BuildOptions

TOPICS = ["vitamin bone fracture", "stock market crash", "protein folding structure", "river"]


def corpus(path: Path, count: int = 300) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        topic = TOPICS[i % len(TOPICS)]
        noise = " ".join(f"w{rng.integers(0, 400)}" for _ in range(12))
        rows.append({"_id": f"d{i}", "title": f"doc {i}", "text": f"{topic} {noise}"})
    return write_jsonl(path, rows)


def build(source: Path, out: Path, encoder: HashingEncoder, index: str) -> Collection:
    options = BuildOptions(progress=False, retriever="dense", index=index, cache_dir=None)
    collection = build_collection(source, out, options, overwrite=True, encoder=encoder)
    collection = collection.with_encoder(encoder)
    return collection


# The hashing vectors are sparse and non-negative, the worst case for sign bits: hence *30.
@pytest.mark.parametrize("spec", ["HNSW16(efSearch=64)", "int8+rescore*4", "binary+rescore*30"])
def test_approximate_collection_agrees_with_flat(tmp_path: Path, spec: str) -> None:
    encoder = HashingEncoder()
    source = corpus(tmp_path / "corpus.jsonl")
    flat = build(source, tmp_path / "flat", encoder, "flat")
    approximate = build(source, tmp_path / "ann", encoder, spec)
    manifest = json.loads((tmp_path / "ann" / "manifest.json").read_text())
    assert manifest["dense"]["index"] == spec
    assert manifest["dense"]["index_file"].endswith("index.faiss")
    assert approximate.info()["index"] == spec
    queries = ["vitamin fracture w12", "market crash w7", "protein structure"]
    for query in queries:
        # The hashing encoder ties many documents: judge by exact scores, not ids.
        exact = {hit.id: hit.score for hit in flat.search(query, 300)}
        cutoff = sorted(exact.values(), reverse=True)[9] - 1e-6
        found = approximate.search(query, 10)
        assert len(found) == 10
        assert sum(exact[hit.id] >= cutoff for hit in found) >= 8

    reopened = open_collection(tmp_path / "ann")
    reopened = reopened.with_encoder(encoder)
    assert [h.id for h in reopened.search(queries[0], 5)] == [
        h.id for h in approximate.search(queries[0], 5)
    ]


def test_search_settings_reach_the_index(tmp_path: Path) -> None:
    encoder = HashingEncoder()
    collection = build(corpus(tmp_path / "c.jsonl"), tmp_path / "ivf", encoder, "IVF8,Flat")
    everything = collection.search("vitamin fracture", 10, nprobe=8)
    flat = build(tmp_path / "c.jsonl", tmp_path / "flat", encoder, "flat")
    expected = [h.score for h in flat.search("vitamin fracture", 10)]
    np.testing.assert_allclose([h.score for h in everything], expected, rtol=1e-5)
    with pytest.raises(InputError, match="no query-time setting 'efSearch'"):
        collection.search("vitamin", 10, efSearch=10)
    with pytest.raises(InputError, match="takes no search settings"):
        flat.search("vitamin", 10, nprobe=4)


def test_a_bad_spec_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Grammar"):
        BuildOptions(index="HNSW32+rescore*x")
    encoder = HashingEncoder()
    with pytest.raises(InputError, match="needs at least 4096 vectors"):
        build(corpus(tmp_path / "c.jsonl"), tmp_path / "out", encoder, "IVF4096,Flat")
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_an_index_file_from_another_build_is_refused_on_open(tmp_path: Path) -> None:
    source = corpus(tmp_path / "c.jsonl")
    build(source, tmp_path / "a", HashingEncoder(), "binary+rescore*4")
    build(source, tmp_path / "b", HashingEncoder(salt="other"), "binary+rescore*4")
    target = json.loads((tmp_path / "a" / "manifest.json").read_text())["dense"]["index_file"]
    donor = json.loads((tmp_path / "b" / "manifest.json").read_text())["dense"]["index_file"]
    shutil.copyfile(tmp_path / "b" / donor, tmp_path / "a" / target)
    with pytest.raises(CollectionError, match="not the index this collection was built with"):
        open_collection(tmp_path / "a")
