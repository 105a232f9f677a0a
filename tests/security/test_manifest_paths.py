"""Paths a manifest names stay inside the collection, and pruning touches only what the
collection created: a hostile manifest is refused before anything is opened or deleted, and a
decoy directory beside the collection survives every write."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.cli.main import main
from densekit.corpus import Document
from densekit.errors import CollectionError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, compact_collection, update_collection


def build(tmp_path: Path) -> Path:
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [{"_id": f"d{i}", "text": f"text number {i} about w{i % 5}"} for i in range(20)],
    )
    out = tmp_path / "c"
    build_collection(
        corpus, out, BuildOptions(progress=False, cache_dir=None), encoder=HashingEncoder()
    ).close()
    return out


def decoy_beside(collection: Path) -> Path:
    """A directory next to the collection holding a copy of its first shard and a file."""
    decoy = collection.parent / "decoy"
    decoy.mkdir()
    manifest = json.loads((collection / "manifest.json").read_text())
    shard = collection / manifest["dense"]["shards"][0]
    shutil.copy(shard, decoy / "00000.npy")
    shutil.copy(shard.with_suffix(".json"), decoy / "00000.json")
    (decoy / "precious.txt").write_text("keep me")
    return decoy


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def edit_manifest(collection: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = collection / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def every_write(collection: Path, corpus: Path) -> list[BaseException | None]:
    """Delete, compact, add and rebuild; what each raised (None where it went through)."""
    writes: list[Callable[[], object]] = [
        lambda: update_collection(collection, delete=["d1"], encoder=HashingEncoder(), cache=False),
        lambda: compact_collection(collection),
        lambda: update_collection(
            collection, add=[Document("new", "a new text")], encoder=HashingEncoder(), cache=False
        ),
        lambda: build_collection(
            corpus,
            collection,
            BuildOptions(progress=False, cache_dir=None),
            overwrite=True,
            encoder=HashingEncoder(),
        ),
    ]
    outcomes: list[BaseException | None] = []
    for write in writes:
        try:
            write()
            outcomes.append(None)
        except CollectionError as exc:
            outcomes.append(exc)
    return outcomes


def rename_shard(target: str) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        old = data["dense"]["shards"][0]
        data["dense"]["shards"][0] = target
        data["files"][target] = data["files"].pop(old)

    return edit


def test_a_shard_named_outside_is_refused_and_the_decoy_survives_every_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    decoy = decoy_beside(collection)
    before = snapshot(decoy)
    edit_manifest(collection, rename_shard("../decoy/00000.npy"))
    with pytest.raises(CollectionError, match=r"'files' names '\.\./decoy/00000\.npy'"):
        Collection(collection)
    assert main(["delete", str(collection), "d2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("densekit: error: ") and err.count("\n") == 1
    assert "../decoy/00000.npy" in err
    outcomes = every_write(collection, tmp_path / "corpus.jsonl")
    assert all(isinstance(outcome, CollectionError) for outcome in outcomes[:3])
    assert snapshot(decoy) == before
    assert (collection / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (rename_shard("/{decoy}/00000.npy"), "files"),
        (rename_shard("{generation}/../../decoy/00000.npy"), "files"),
        (rename_shard("{generation}/./embeddings/00000.npy"), "files"),
        (lambda data: data.update(generation=".."), "generation"),
        (lambda data: data.update(generation="{decoy}"), "generation"),
        (lambda data: data["lexical"].update(directory="../decoy"), "lexical.directory"),
        (lambda data: data.update(tombstones="../decoy/00000.npy", deleted=1), "tombstones"),
        (lambda data: data["dense"].update(passage_offsets="/etc/passwd"), "dense.passage_offsets"),
    ],
)
def test_every_path_field_is_checked(
    edit: Callable[[dict[str, Any]], None], field: str, tmp_path: Path
) -> None:
    collection = build(tmp_path)
    decoy = decoy_beside(collection)
    generation = json.loads((collection / "manifest.json").read_text())["generation"]

    def filled(data: dict[str, Any]) -> None:
        edit(data)
        text = json.dumps(data).replace("{decoy}", str(decoy).lstrip("/"))
        data.clear()
        data.update(json.loads(text.replace("{generation}", generation)))

    edit_manifest(collection, filled)
    with pytest.raises(CollectionError, match=f"manifest field '{field}"):
        Collection(collection)
    before = snapshot(decoy)
    every_write(collection, tmp_path / "corpus.jsonl")
    assert snapshot(decoy) == before


def test_a_symlink_leading_out_of_the_collection_is_refused(tmp_path: Path) -> None:
    collection = build(tmp_path)
    decoy = decoy_beside(collection)
    generation = json.loads((collection / "manifest.json").read_text())["generation"]
    embeddings = collection / generation / "embeddings"
    shutil.rmtree(embeddings)
    embeddings.symlink_to(decoy, target_is_directory=True)
    before = snapshot(decoy)
    with pytest.raises(CollectionError, match="symbolic link"):
        Collection(collection)
    with pytest.raises(CollectionError, match="symbolic link"):
        update_collection(collection, delete=["d1"], encoder=HashingEncoder(), cache=False)
    assert snapshot(decoy) == before


def test_pruning_touches_only_what_the_collection_created(tmp_path: Path) -> None:
    collection = build(tmp_path)
    decoy = decoy_beside(collection)
    (decoy / "residual-0123456789ab").mkdir()
    (decoy / "residual-0123456789ab" / "weights").write_text("not an adapter of ours")
    before = snapshot(decoy)
    generation = json.loads((collection / "manifest.json").read_text())["generation"]
    # Things densekit did not create, in the collection and its generation folder.
    (collection / "notes.txt").write_text("mine")
    (collection / "gen-notes").mkdir()
    (collection / "gen-notes" / "draft.txt").write_text("mine too")
    (collection / "gen-20200101T000000-deadbeef").symlink_to(decoy, target_is_directory=True)
    (collection / "adapters").symlink_to(decoy, target_is_directory=True)
    os.symlink(decoy, collection / generation / "linked")
    assert every_write(collection, tmp_path / "corpus.jsonl") == [None] * 4
    assert snapshot(decoy) == before
    assert (collection / "notes.txt").read_text() == "mine"
    assert (collection / "gen-notes" / "draft.txt").read_text() == "mine too"
    assert len(Collection(collection)) == 20  # the rebuild
