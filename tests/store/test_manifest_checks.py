"""A manifest with wrong JSON types, and stored row arrays full of garbage of the right size, are
refused with a CollectionError naming the field or file and what to do; the CLI prints one
line and exits 2."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.cli.main import main
from densekit.errors import CollectionError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, update_collection


def build(tmp_path: Path, **options: object) -> Path:
    corpus = write_jsonl(
        tmp_path / "corpus.jsonl",
        [{"_id": f"d{i}", "text": f"text number {i} about w{i % 5}"} for i in range(12)],
    )
    out = tmp_path / "c"
    build_collection(
        corpus,
        out,
        BuildOptions(progress=False, cache_dir=None, **options),  # type: ignore[arg-type]
        encoder=HashingEncoder(),
    ).close()
    return out


def edit_manifest(collection: Path, edit: Callable[[dict[str, Any]], object]) -> None:
    path = collection / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def refused_by_cli(capsys: pytest.CaptureFixture[str], collection: Path) -> str:
    assert main(["info", str(collection)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("densekit: error: ") and err.count("\n") == 1
    return err


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda m: m.update(files=None), "field 'files' is null, expected an object"),
        (lambda m: m.update(files=[]), "field 'files' is list '[]', expected an object"),
        (lambda m: m.update(documents="12"), "field 'documents' is str '12', expected a whole"),
        (lambda m: m.update(documents=-1), "field 'documents' is int '-1', expected a whole"),
        (lambda m: m.update(deleted=True), "field 'deleted' is bool 'True', expected a whole"),
        (lambda m: m["files"].update(x=None), "field \"files['x']\" is null"),
        (lambda m: m["dense"].update(shards="a.npy"), "field 'dense.shards' is str"),
        (lambda m: m["dense"]["shards"].append(7), "field 'dense.shards[1]' is int"),
        (lambda m: m.update(dense=[]), "field 'dense' is list"),
        (lambda m: m["lexical"].update(k1="high"), "field 'lexical.k1' is str 'high'"),
        (lambda m: m["encoder"].pop("fingerprint"), "field 'encoder.fingerprint' is missing"),
        (lambda m: m.pop("generation"), "field 'generation' is missing"),
        (lambda m: m.update(surprise=1), "unknown field 'surprise'"),
        (lambda m: m["dense"].update(surprise=1), "unknown field 'dense.surprise'"),
        (lambda m: m.update(fusion=None), "field 'fusion' is null, expected an object"),
        # JSON's \ud800 escape reads as text no file name, terminal or database can hold.
        (lambda m: m["encoder"].update(name="a\ud800"), "field 'encoder.name' holds a lone"),
        (lambda m: m.update(source="\udc80x"), "field 'source' holds a lone UTF-16 surrogate"),
        (lambda m: m["stats"].update(note=["\ud800"]), "field 'stats.note[0]' holds a lone"),
        (lambda m: m["files"].update({"gen-x/\ud800": 1}), "a key of field 'files' holds"),
    ],
)
def test_wrong_json_types_or_text_name_the_field(
    edit: Callable[[dict[str, Any]], object],
    said: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collection = build(tmp_path)
    edit_manifest(collection, edit)
    with pytest.raises(CollectionError, match="corrupt manifest") as refused:
        Collection(collection)
    assert said in str(refused.value)
    assert "restore manifest.json from a backup or rebuild" in str(refused.value)
    assert said in refused_by_cli(capsys, collection)


def test_a_manifest_that_is_not_an_object_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    (collection / "manifest.json").write_text("[1, 2]")
    assert "not a densekit manifest" in refused_by_cli(capsys, collection)


def test_a_manifest_nested_too_deeply_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    path = collection / "manifest.json"
    deep = "[" * 100_000 + "]" * 100_000  # past the JSON reader's recursion limit
    path.write_text(path.read_text().replace('"stats": {', f'"stats": {{"deep": {deep}, ', 1))
    assert "corrupt manifest" in refused_by_cli(capsys, collection)


def test_a_shard_path_with_a_lone_surrogate_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)

    def rename_shard(m: dict[str, Any]) -> None:
        shard = m["dense"]["shards"][0]
        renamed = shard.replace("00000.npy", "\ud800.npy")
        m["dense"]["shards"][0] = renamed
        m["files"][renamed] = m["files"].pop(shard)

    edit_manifest(collection, rename_shard)
    assert "lone UTF-16 surrogate" in refused_by_cli(capsys, collection)


@pytest.mark.parametrize(
    "garbage",
    [
        "bytes",  # not an .npy at all
        "floats",  # a valid .npy of the wrong kind
        "negative",  # row numbers below zero
        "pickle",  # an object array
    ],
)
def test_a_garbage_tombstone_file_of_the_same_size_is_a_collection_error(
    garbage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    update_collection(collection, delete=["d1", "d2"], encoder=HashingEncoder(), cache=False)
    name = json.loads((collection / "manifest.json").read_text())["tombstones"]
    path = collection / name
    size = path.stat().st_size
    if garbage == "bytes":
        path.write_bytes(b"\x93" * size)
    else:
        values = {
            "floats": np.array([0.5, 1.5]),
            "negative": np.array([-1, -2], dtype=np.int64),
            "pickle": np.array([{"row": 1}, None], dtype=object),
        }[garbage]
        np.save(path, values, allow_pickle=True)
        with path.open("r+b") as handle:  # padded or cut to the recorded size
            handle.truncate(size)
    assert path.stat().st_size == size
    with pytest.raises(CollectionError, match=f"the tombstone file {name}") as refused:
        Collection(collection)
    assert "rebuild with densekit index" in str(refused.value)
    assert name in refused_by_cli(capsys, collection)


def test_garbage_passage_offsets_are_a_collection_error(tmp_path: Path) -> None:
    from densekit.corpus import ChunkConfig

    collection = build(tmp_path, chunk=ChunkConfig(4, 1))
    name = json.loads((collection / "manifest.json").read_text())["dense"]["passage_offsets"]
    path = collection / name
    path.write_bytes(b"\0" * path.stat().st_size)
    with pytest.raises(CollectionError, match=f"the passage offsets file {name}"):
        Collection(collection)
