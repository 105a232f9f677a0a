"""A write that runs out of disk says ENOSPC and names the file, leaves nothing half-written, and
publishes nothing (the disk is simulated full by making numpy, SQLite, BM25 or fsync fail)."""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit.cli.main import main
from densekit.corpus import Document
from densekit.files.durability import StorageError, atomic_write_text
from densekit.index.lexical import LexicalIndex
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions, update_collection
from densekit.store import documents as documents_module

FULL = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def corpus(tmp_path: Path, count: int = 30) -> Path:
    return write_jsonl(
        tmp_path / "corpus.jsonl",
        [{"_id": f"d{i}", "text": f"text number {i} about w{i % 5}"} for i in range(count)],
    )


def build(source: Path, out: Path, **options: Any) -> Collection:
    settings = {"progress": False, "cache_dir": None, "rows_per_shard": 10, **options}
    return build_collection(source, out, BuildOptions(**settings), encoder=HashingEncoder())


def full_after(calls: int, real: Any) -> Any:
    """``real``, failing with ENOSPC (and no file name) from its ``calls``-th call on."""
    made = {"calls": 0}

    def fill(*args: Any, **kwargs: Any) -> Any:
        made["calls"] += 1
        if made["calls"] >= calls:
            raise OSError(FULL.errno, FULL.strerror)
        return real(*args, **kwargs)

    return fill


def half_written(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.name.endswith(".tmp"))


def test_a_fresh_index_out_of_disk_names_the_shard_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(np, "save", full_after(1, np.save))
    out = tmp_path / "c"
    with pytest.raises(StorageError) as raised:
        build(corpus(tmp_path), out, retriever="dense")
    message = str(raised.value)
    assert raised.value.errno == errno.ENOSPC
    assert "(ENOSPC)" in message and "No space left on device" in message
    assert message.startswith(str(out)) and "/embeddings/00000.npy:" in message
    assert "free some space" in message
    assert not out.exists()  # the build created it, and nothing of it was finished


def test_out_of_disk_after_some_shards_keeps_only_whole_ones_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = corpus(tmp_path), tmp_path / "c"
    with monkeypatch.context() as patched:
        patched.setattr(np, "save", full_after(2, np.save))
        with pytest.raises(StorageError, match=r"/embeddings/00001\.npy: No space"):
            build(source, out, retriever="dense")
    assert not (out / "manifest.json").exists() and half_written(out) == []
    (generation,) = out.glob("gen-*")
    assert sorted(p.name for p in (generation / "embeddings").iterdir()) == [
        "00000.json",
        "00000.npy",
    ]
    assert len(build(source, out, retriever="dense")) == 30  # the rerun resumes


def test_a_full_disk_under_sqlite_names_the_documents_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FullConnection:
        def __init__(self, connection: sqlite3.Connection) -> None:
            self._connection = connection

        def executemany(self, *args: Any) -> Any:
            raise sqlite3.OperationalError("database or disk is full")

        def __getattr__(self, name: str) -> Any:
            return getattr(self._connection, name)

    connect = sqlite3.connect
    monkeypatch.setattr(
        documents_module.sqlite3, "connect", lambda path, *a, **k: FullConnection(connect(path))
    )
    out = tmp_path / "c"
    with pytest.raises(StorageError, match=r"/documents\.sqlite: No space left on device \(ENOSPC"):
        build(corpus(tmp_path), out, retriever="bm25")
    assert not out.exists()


def test_the_cli_says_enospc_and_the_file_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def save_half(self: LexicalIndex, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "params.index.json").write_text("{")  # half-written, then the disk is full
        raise OSError(FULL.errno, FULL.strerror)

    monkeypatch.setattr(LexicalIndex, "save", save_half)
    out = tmp_path / "c"
    code = main(
        ["index", str(corpus(tmp_path)), "--out", str(out), "--retriever", "bm25", "--quiet"]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"densekit: error: {out}/gen-") and "/bm25: No space left" in err
    assert "(ENOSPC)" in err and "nothing half-written was published" in err
    assert not out.exists()


def test_a_change_out_of_disk_keeps_the_published_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "c"
    build(corpus(tmp_path), out).close()
    manifest = (out / "manifest.json").read_bytes()
    generations = sorted(out.glob("gen-*"))
    monkeypatch.setattr(np, "save", full_after(1, np.save))
    with pytest.raises(StorageError, match="ENOSPC"):
        update_collection(
            out, add=[Document("n", "new text")], encoder=HashingEncoder(), cache=False
        )
    assert (out / "manifest.json").read_bytes() == manifest
    assert sorted(out.glob("gen-*")) == generations and half_written(out) == []
    assert len(Collection(out)) == 30


def test_a_manifest_write_out_of_disk_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"old": True}))
    monkeypatch.setattr(os, "fsync", full_after(1, os.fsync))
    with pytest.raises(StorageError, match=r"manifest\.json: No space left on device \(ENOSPC\)"):
        atomic_write_text(path, json.dumps({"new": True}))
    assert json.loads(path.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]
