"""Leftovers (what the manifest no longer names) are cleared by every write and by
`densekit check --repair`, including those of a compaction killed right after its manifest
rename; what densekit did not create is never touched, and open readers keep searching."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.adapt import AdapterSpec, ResidualAdapter
from densekit.cli.main import main
from densekit.corpus import Document
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, compact_collection, update_collection
from densekit.store.adapters import attach_adapter
from densekit.store.layout import directory_lock
from densekit.store.leftovers import find_leftovers
from densekit.store.manifest import read_manifest

STALE = "gen-20200101T000000-0badcafe"

KILL_AFTER_RENAME = """
import os, signal, sys
from densekit.store import commit, compact_collection

publish_manifest = commit.write_manifest

def write_then_die(directory, manifest):
    publish_manifest(directory, manifest)
    os.kill(os.getpid(), signal.SIGKILL)  # before anything is cleaned up

commit.write_manifest = write_then_die
compact_collection(sys.argv[1])
"""


def corpus(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "corpus.jsonl",
        [{"_id": f"d{i}", "text": f"text number {i} about w{i % 5}"} for i in range(30)],
    )


def build(tmp_path: Path, **options: object) -> Path:
    out = tmp_path / "c"
    build_collection(
        corpus(tmp_path),
        out,
        BuildOptions(progress=False, cache_dir=None, rows_per_shard=10, **options),  # type: ignore[arg-type]
        encoder=HashingEncoder(),
    ).close()
    return out


def change(collection: Path, **kwargs: object) -> None:
    update_collection(collection, encoder=HashingEncoder(), cache=False, **kwargs)  # type: ignore[arg-type]


def generations(collection: Path) -> list[str]:
    return sorted(path.name for path in collection.glob("gen-*"))


def leftovers(collection: Path) -> list[str]:
    return [left.path for left in find_leftovers(collection, read_manifest(collection))]


def plant_leftovers(collection: Path) -> dict[str, Path]:
    """What killed or replaced writes leave (by the leftover each is part of), and a file of
    the user's own."""
    generation = read_manifest(collection).generation
    planted = {
        STALE: collection / STALE / "embeddings" / "00000.npy",
        ".manifest.json.4242.tmp": collection / ".manifest.json.4242.tmp",
        f"{generation}/embeddings/.00009.npy.tmp": (
            collection / generation / "embeddings" / ".00009.npy.tmp"
        ),
        "adapters/residual-0123456789ab": (
            collection / "adapters" / "residual-0123456789ab" / "adapter.safetensors"
        ),
    }
    for path in planted.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
    (collection / "notes.txt").write_text("mine")
    return planted


def test_a_compaction_killed_after_its_rename_is_cleaned_up_by_the_next(tmp_path: Path) -> None:
    collection = build(tmp_path)
    change(collection, delete=["d1", "d2"])
    change(collection, add=[Document("n1", "new text w1")])
    reader = Collection(collection)
    reader = reader.with_encoder(HashingEncoder())
    before = [hit.id for hit in reader.search("text number w3", k=5)]
    killed = subprocess.run([sys.executable, "-c", KILL_AFTER_RENAME, str(collection)])
    assert killed.returncode == -9
    published = read_manifest(collection)
    assert published.deleted == 0 and published.documents == 29  # the compaction published
    assert len(generations(collection)) == 3 and len(leftovers(collection)) == 2
    compact_collection(collection)  # nothing to compact: it still clears what is left
    assert generations(collection) == [published.generation] and leftovers(collection) == []
    assert len(Collection(collection)) == 29
    # A reader opened before keeps searching its snapshot: it holds its files open.
    assert [hit.id for hit in reader.search("text number w3", k=5)] == before


WRITES: dict[str, Callable[[Path, Path], object]] = {
    "add": lambda c, _: change(c, add=[Document("n1", "new text")]),
    "update": lambda c, _: change(c, update=[Document("d4", "other text")]),
    "delete": lambda c, _: change(c, delete=["d5"]),
    "compact": lambda c, _: compact_collection(c),
    "index": lambda c, source: build_collection(
        source,
        c,
        BuildOptions(progress=False, cache_dir=None),
        overwrite=True,
        encoder=HashingEncoder(),
    ),
    "attach": lambda c, _: attach_adapter(c, ResidualAdapter(AdapterSpec(rank=2), 64)),
}


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_write_clears_leftovers(write: str, tmp_path: Path) -> None:
    collection = build(tmp_path)
    change(collection, delete=["d1"])  # a shared generation, and tombstones to compact
    planted = plant_leftovers(collection)
    assert sorted(leftovers(collection)) == sorted(planted)
    WRITES[write](collection, tmp_path / "corpus.jsonl")
    assert leftovers(collection) == []
    assert not any(path.exists() for path in planted.values())
    assert (collection / "notes.txt").read_text() == "mine"
    Collection(collection).close()


def test_check_reports_leftovers_and_repair_removes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    collection = build(tmp_path)
    planted = plant_leftovers(collection)
    assert main(["check", str(collection)]) == 0
    out = capsys.readouterr().out
    assert f"leftover   {STALE}: " in out and "densekit check --repair removes them" in out
    with directory_lock(collection):  # another write is running: repair must wait for it
        assert main(["check", str(collection), "--repair"]) == 2
    assert "another densekit write" in capsys.readouterr().err
    assert all(path.exists() for path in planted.values())
    assert main(["check", str(collection), "--repair", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sorted(left["path"] for left in report["removed"]) == sorted(planted)
    assert report["leftovers"] == [] and report["ok"] is True
    assert not any(path.exists() for path in planted.values())
    assert (collection / "notes.txt").read_text() == "mine"
    assert len(Collection(collection)) == 30


def test_a_leftover_that_cannot_be_removed_does_not_fail_the_published_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Files another user owns, or a disk turned read-only after the rename: the change is
    # published by then, so it must be reported as done, and the leftover stays for later.
    collection = build(tmp_path)
    stuck = collection / read_manifest(collection).generation / "embeddings" / ".00009.npy.tmp"
    stuck.write_bytes(b"left behind")
    unlink = Path.unlink

    def refuse(path: Path, missing_ok: bool = False) -> None:
        if path == stuck:
            raise PermissionError(13, "Permission denied", str(path))
        unlink(path, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", refuse)
    change(collection, delete=["d1"])
    assert len(Collection(collection)) == 29
    name = stuck.relative_to(collection).as_posix()
    assert leftovers(collection) == [name]
    # --repair says what it removed: not the file it could not remove, which is still listed.
    assert main(["check", str(collection), "--repair", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"] == [] and [left["path"] for left in report["leftovers"]] == [name]
