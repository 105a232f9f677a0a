"""Sharded collections: built by routing documents by id, searched as one collection."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import densekit
from densekit.errors import CollectionError, InputError
from densekit.retrieve import open_collection
from densekit.store import BuildOptions, update_collection
from densekit.store import sharded_build as sharded_build_module
from densekit.store.sharded import SHARD_NAME, ShardedStore, shard_of
from densekit.store.sharded_build import build_sharded

DOCUMENTS = 300  # in the scifact_part fixture (tests/conftest.py)
OPTIONS = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)


def test_documents_are_routed_by_a_hash_of_their_id(sharded_scifact) -> None:
    whole, sharded, _ = sharded_scifact
    store = sharded.stored
    assert isinstance(store, ShardedStore)
    assert len(sharded) == len(whole) == DOCUMENTS
    for number, shard in enumerate(store.shards):
        assert shard.doc_ids and all(shard_of(i, 3) == number for i in shard.doc_ids)
    assert sorted(sharded.doc_ids) == sorted(whole.doc_ids)
    info = sharded.info()
    assert [s["documents"] for s in info["shards"]] == [len(s) for s in store.shards]
    assert info["documents"] == DOCUMENTS and info["model"] == whole.info()["model"]


def test_routing_is_stable_and_spreads_ids() -> None:
    assert [shard_of(f"doc-{i}", 4) for i in range(8)] == [
        shard_of(f"doc-{i}", 4) for i in range(8)
    ]
    counts = np.bincount([shard_of(f"doc-{i}", 4) for i in range(4000)], minlength=4)
    assert counts.min() > 900  # about a quarter each


def copy_of(built_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(built_dir, copy)
    return copy


def test_a_missing_shard_folder_is_named(sharded_scifact, tmp_path: Path) -> None:
    copy = copy_of(sharded_scifact[1].directory, tmp_path)
    name = json.loads((copy / "shards.json").read_text())["shards"][1]
    shutil.rmtree(copy / name)
    with pytest.raises(CollectionError, match=f"shard folder {name} is missing"):
        open_collection(copy)


def swap_shard(collection: Path, number: int, donor: Path) -> None:
    """Put the donor's shard ``number`` (folder and pinned manifest) in place of the
    collection's own, as a hand edit of shards.json would."""
    mine = json.loads((collection / "shards.json").read_text())
    theirs = json.loads((donor / "shards.json").read_text())
    shutil.rmtree(collection / mine["shards"][number])
    shutil.copytree(donor / theirs["shards"][number], collection / mine["shards"][number])
    mine["manifests"][number] = theirs["manifests"][number]
    (collection / "shards.json").write_text(json.dumps(mine))


def test_a_shard_from_another_collection_is_refused(
    sharded_scifact, scifact_part, tmp_path: Path
) -> None:
    corpus, _ = scifact_part
    copy = copy_of(sharded_scifact[1].directory, tmp_path)
    bm25_only = BuildOptions(retriever="bm25", progress=False)
    build_sharded(corpus, tmp_path / "other", bm25_only, shards=3).close()
    swap_shard(copy, 2, tmp_path / "other")
    with pytest.raises(CollectionError, match=r"shard 2 .* not shards of one collection"):
        open_collection(copy)


def test_a_shard_changed_or_replaced_on_its_own_is_named(
    sharded_scifact, scifact_part, tmp_path: Path
) -> None:
    copy = copy_of(sharded_scifact[1].directory, tmp_path)
    first = copy / json.loads((copy / "shards.json").read_text())["shards"][0]
    update_collection(first, delete=[open_collection(first).doc_ids[0]], progress=False)
    pinned = r"shard 0 \(shard-000-of-003-\w+\) does not hold what shards.json pins"
    with pytest.raises(CollectionError, match=pinned):
        open_collection(copy)


def test_shards_whose_bm25_was_scored_for_other_documents_are_refused(
    scifact_part, tmp_path: Path
) -> None:
    corpus, _ = scifact_part
    fewer = tmp_path / "fewer.jsonl"
    fewer.write_text("".join(corpus.read_text().splitlines(keepends=True)[:200]))
    options = BuildOptions(retriever="bm25", progress=False)
    build_sharded(corpus, tmp_path / "all", options, shards=2).close()
    build_sharded(fewer, tmp_path / "fewer", options, shards=2).close()
    swap_shard(tmp_path / "all", 1, tmp_path / "fewer")
    with pytest.raises(CollectionError, match="shard 0's BM25 scores were made with"):
        open_collection(tmp_path / "all")


@pytest.mark.parametrize(
    ("shards", "options", "message"),
    [
        (1, OPTIONS, "--shards 1: give 2 to"),
        (400, BuildOptions(retriever="bm25", progress=False), "leave shard .* empty"),
        (2, BuildOptions(vectors="v.npy", progress=False), "--vectors cannot be combined"),
    ],
)
def test_bad_sharding_requests_are_refused_before_anything_is_published(
    scifact_part, tmp_path: Path, shards: int, options: BuildOptions, message: str
) -> None:
    with pytest.raises(InputError, match=message):
        build_sharded(scifact_part[0], tmp_path / "c", options, shards=shards)
    assert not (tmp_path / "c" / "shards.json").exists()


def test_a_repeated_id_is_named_where_it_repeats(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"_id": "a", "text": "one"}, {"_id": "b", "text": "two"}, {"_id": "a", "text": "x"}]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"corpus.jsonl:3: duplicate document id 'a'"):
        build_sharded(corpus, tmp_path / "c", BuildOptions(retriever="bm25"), shards=2)


def test_an_interrupted_build_resumes_and_keeps_the_shards_it_finished(
    scifact_part, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = BuildOptions(retriever="bm25", progress=False)
    real, built = sharded_build_module.build_collection, []

    def failing_third(corpus, out, *args, **kwargs):
        if len(built) == 2:
            raise KeyboardInterrupt
        built.append(Path(out).name)
        return real(corpus, out, *args, **kwargs)

    monkeypatch.setattr(sharded_build_module, "build_collection", failing_third)
    with pytest.raises(KeyboardInterrupt):
        build_sharded(scifact_part[0], tmp_path / "c", options, shards=3)
    assert not (tmp_path / "c" / "shards.json").exists()
    monkeypatch.setattr(sharded_build_module, "build_collection", real)
    calls = []
    monkeypatch.setattr(
        sharded_build_module,
        "build_collection",
        lambda corpus, out, *a, **k: calls.append(Path(out).name) or real(corpus, out, *a, **k),
    )
    with build_sharded(scifact_part[0], tmp_path / "c", options, shards=3) as store:
        assert len(store) == DOCUMENTS
    assert len(calls) == 1 and calls[0] not in built
    assert not list((tmp_path / "c").glob(".routing-*"))


def test_sharded_and_unsharded_builds_replace_each_other_at_one_path(
    scifact_part, tmp_path: Path
) -> None:
    corpus, _ = scifact_part
    options = BuildOptions(retriever="bm25", progress=False)
    out = tmp_path / "c"
    densekit.build_collection(corpus, out, options).close()
    with pytest.raises(CollectionError, match="already exists"):
        build_sharded(corpus, out, options, shards=2)
    build_sharded(corpus, out, options, shards=2, overwrite=True).close()
    assert not (out / "manifest.json").exists() and not list(out.glob("gen-*"))
    build_sharded(corpus, out, options, shards=3, overwrite=True).close()
    assert len([p for p in out.iterdir() if SHARD_NAME.fullmatch(p.name)]) == 3
    densekit.build_collection(corpus, out, options, overwrite=True).close()
    assert not (out / "shards.json").exists()
    assert not [p for p in out.iterdir() if SHARD_NAME.fullmatch(p.name)]
    with open_collection(out) as collection:
        assert len(collection) == DOCUMENTS
