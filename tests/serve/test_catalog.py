from __future__ import annotations

from pathlib import Path

import pytest
from serving import API_KEY, build_hashing_collection, hashing_state

from densekit.corpus.document import Document
from densekit.errors import InputError
from densekit.serve.catalog import UnknownCollectionError, collection_names


def test_collection_names_from_folders_and_name_equals_dir() -> None:
    assert collection_names(["build/scifact/", "other=x/y"]) == {
        "scifact": "build/scifact/",
        "other": "x/y",
    }
    with pytest.raises(InputError, match="NAME=DIR"):
        collection_names(["a/docs", "b/docs"])


def test_catalog_refuses_bad_names_and_missing_folders(tmp_path: Path) -> None:
    directory = build_hashing_collection(tmp_path / "docs")
    with pytest.raises(InputError, match="not a usable collection name"):
        hashing_state({"../docs": directory})
    with pytest.raises(InputError, match="no such collection directory"):
        hashing_state({"docs": tmp_path / "missing"})
    state = hashing_state({"docs": directory})
    with pytest.raises(UnknownCollectionError, match="this server has: docs"):
        state.catalog["etc"]
    state.close()


def test_a_reader_keeps_its_snapshot_while_a_write_commits(tmp_path: Path) -> None:
    state = hashing_state({"docs": build_hashing_collection(tmp_path / "docs")})
    served = state.catalog["docs"]
    with served.snapshot() as before:
        report = served.change(add=[Document("d9", "a brand new text about comets")])
        assert report.added == 1 and report.documents == 6
        # The old snapshot is still open and still answers from its own generation.
        assert "d9" not in before.doc_ids
        assert [hit.id for hit in before.search("comets", 1, retriever="bm25")] == []
        with served.snapshot() as after:
            assert "d9" in after.doc_ids
            assert after.search("comets", 1, retriever="bm25")[0].id == "d9"
    served.change(delete=["d9", "d1"])
    with served.snapshot() as latest:
        assert sorted(latest.doc_ids) == ["d2", "d3", "d4", "d5"]
    state.close()


def test_errors_name_the_collection_not_the_servers_paths(tmp_path: Path) -> None:
    directory = build_hashing_collection(tmp_path / "docs")
    state = hashing_state({"docs": directory})
    with pytest.raises(InputError) as caught:
        state.catalog["docs"].change(add=[Document("d1", "already there")])
    assert "collection 'docs'" in str(caught.value) and str(directory) not in str(caught.value)
    with state.catalog["docs"].snapshot() as collection:
        assert len(collection) == 5  # the refused change wrote nothing
    state.close()


def test_a_tuned_fusion_is_described_without_the_servers_paths(tmp_path: Path) -> None:
    from densekit.store.fusion_default import store_tuned_fusion
    from densekit.store.manifest import FusionTuningInfo

    directory = build_hashing_collection(tmp_path / "docs")
    dataset = tmp_path / "private" / "judged"
    record = FusionTuningInfo(
        dataset="judged",
        dataset_path=str(dataset),
        split="train",
        qrels_sha256="0" * 64,
        metric="nDCG@10",
        queries=20,
        folds=5,
        seed=0,
        candidates=45,
        cv_mean=0.5,
        cv_std=0.1,
        score=0.6,
        previous={"method": "convex", "k": 60, "depth": 100, "weights": [0.4, 0.6]},
        previous_score=0.55,
        fold_choices=[],
        parts={"dense": 0.4, "bm25": 0.5},
        version="0",
        created="2026-01-01T00:00:00+00:00",
    )
    store_tuned_fusion(directory, {"method": "rrf", "k": 30, "depth": 50}, record)
    state = hashing_state({"docs": directory})
    described = state.catalog.describe("docs")
    state.close()
    assert described["fusion"] == {"method": "rrf", "k": 30, "depth": 50}
    assert described["fusion_tuning"]["dataset"] == "judged"
    assert described["fusion_tuning"]["cv_mean"] == 0.5
    assert "dataset_path" not in described["fusion_tuning"]
    assert str(tmp_path) not in str(described)


def test_a_sharded_collection_is_served_as_the_unsharded_one(tmp_path: Path, serve_state) -> None:
    import httpx
    from conftest import DOCUMENTS, write_jsonl
    from helpers import HashingEncoder

    from densekit.store import BuildOptions
    from densekit.store.sharded_build import build_sharded

    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    options = BuildOptions(progress=False, cache_dir=None)
    build_sharded(corpus, tmp_path / "sharded", options, shards=2, encoder=HashingEncoder()).close()
    whole = build_hashing_collection(tmp_path / "whole")
    url = serve_state(hashing_state({"sharded": tmp_path / "sharded", "whole": whole}))
    answers = {
        name: httpx.post(
            f"{url}/search", json={"collection": name, "query": "vitamin D bones", "k": 5}
        ).json()["results"][0]["hits"]
        for name in ("sharded", "whole")
    }
    assert [h["id"] for h in answers["sharded"]] == [h["id"] for h in answers["whole"]]
    assert [h["score"] for h in answers["sharded"]] == pytest.approx(
        [h["score"] for h in answers["whole"]], rel=1e-6
    )
    key = {"Authorization": f"Bearer {API_KEY}"}
    deleted = httpx.post(f"{url}/collections/sharded/delete", json={"ids": ["d3"]}, headers=key)
    assert deleted.status_code == 200, deleted.text
    after = httpx.post(f"{url}/search", json={"collection": "sharded", "query": "vitamin D"})
    assert "d3" not in [hit["id"] for hit in after.json()["results"][0]["hits"]]
