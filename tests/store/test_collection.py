from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import kill_once_writing

from densekit.errors import CollectionError
from densekit.retrieve import Collection, build_collection
from densekit.store import BuildOptions

BM25_ONLY = BuildOptions(retriever="bm25", progress=False)


def test_missing_and_non_collection_dirs(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="no such collection"):
        Collection(tmp_path / "nowhere")
    with pytest.raises(CollectionError, match="not a densekit collection"):
        Collection(tmp_path)


def test_partial_collection_is_refused(tmp_path: Path) -> None:
    (tmp_path / "gen-20260101T000000-abcd").mkdir()
    with pytest.raises(CollectionError, match="partial collection"):
        Collection(tmp_path)


def test_corrupt_manifest_and_files_are_refused(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    collection = build_collection(corpus_file, out, BM25_ONLY)
    some_file = next(iter(collection.manifest.files))
    with (out / some_file).open("ab") as handle:
        handle.write(b"garbage")
    with pytest.raises(CollectionError, match=f"corrupt collection: {some_file} is"):
        Collection(out)
    (out / some_file).unlink()
    with pytest.raises(CollectionError, match="is missing"):
        Collection(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(CollectionError, match="corrupt manifest"):
        Collection(out)
    (out / "manifest.json").write_text(
        json.dumps({"format": "densekit-collection", "format_version": 99})
    )
    with pytest.raises(CollectionError, match="format version 99"):
        Collection(out)


def _big_corpus(path: Path, documents: int) -> Path:
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    with path.open("w") as handle:
        for i in range(documents):
            text = " ".join(words[(i * 7 + j) % 10] for j in range(30))
            handle.write(json.dumps({"_id": f"doc{i}", "text": f"{text} token{i}"}) + "\n")
    return path


def _index_process(corpus: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    command = [sys.executable, "-m", "densekit.cli.main", "index", str(corpus), "--out", str(out)]
    return subprocess.Popen([*command, "--quiet", *extra], **popen)


def _kill_during_build(
    corpus: Path, out: Path, *extra: str, retriever: str = "bm25", after: float = 0.2
) -> None:
    """Start `densekit index`, wait until it is writing a new generation, then SIGKILL it."""
    arguments = ["index", corpus, "--out", out, "--quiet", "--retriever", retriever, *extra]
    kill_once_writing(arguments, out, after)


@pytest.mark.slow
def test_kill_9_mid_build_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    corpus = _big_corpus(tmp_path / "big.jsonl", 300_000)
    out = tmp_path / "c"
    _kill_during_build(corpus, out)
    assert not (out / "manifest.json").exists()
    with pytest.raises(CollectionError, match="partial collection"):
        Collection(out)


@pytest.mark.slow
def test_kill_9_while_encoding_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    corpus = _big_corpus(tmp_path / "corpus.jsonl", 5000)  # ~15 s of encoding with MiniLM
    out = tmp_path / "c"
    _kill_during_build(corpus, out, retriever="dense", after=2.0)
    assert not (out / "manifest.json").exists()
    with pytest.raises(CollectionError, match="partial collection"):
        Collection(out)


@pytest.mark.slow
def test_kill_9_mid_rebuild_keeps_the_old_collection_searchable(
    corpus_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    build_collection(corpus_file, out, BM25_ONLY)
    before = (out / "manifest.json").read_bytes()
    corpus = _big_corpus(tmp_path / "big.jsonl", 300_000)
    _kill_during_build(corpus, out, "--overwrite")
    assert (out / "manifest.json").read_bytes() == before
    collection = Collection(out)
    assert collection.search("loyal dogs", k=1)[0].id == "d2"
    # The next overwrite clears the dead build's leftovers.
    build_collection(corpus_file, out, BM25_ONLY, overwrite=True)
    assert len(list(out.glob("gen-*"))) == 1


@pytest.mark.slow
def test_ctrl_c_mid_build_exits_130_and_leaves_no_generation(tmp_path: Path) -> None:
    corpus = _big_corpus(tmp_path / "big.jsonl", 300_000)
    out = tmp_path / "c"
    process = _index_process(
        corpus,
        out,
        "--retriever",
        "bm25",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(out.glob("gen-*/documents.sqlite")):
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    assert not (out / "manifest.json").exists()
    assert not list(out.glob("gen-*"))


def test_damaged_files_of_the_recorded_size_are_refused(corpus_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "c"
    collection = build_collection(corpus_file, out, BM25_ONLY)
    database = out / collection.manifest.generation / "documents.sqlite"
    database.write_bytes(b"\x00" * database.stat().st_size)
    with pytest.raises(CollectionError, match=r"documents\.sqlite is not a readable database"):
        Collection(out)


@pytest.mark.slow
def test_sigkill_mid_encoding_then_resume_equals_an_uninterrupted_build(tmp_path: Path) -> None:
    corpus = _big_corpus(tmp_path / "corpus.jsonl", 3000)
    flags = ("--retriever", "dense", "--shard-rows", "300", "--no-cache")
    reference = tmp_path / "reference"
    assert _index_process(corpus, reference, *flags).wait() == 0

    out = tmp_path / "c"
    process = _index_process(corpus, out, *flags)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(out.glob("gen-*/embeddings/*.json"))) < 3:
        assert process.poll() is None, "the build finished before it could be killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with pytest.raises(CollectionError, match="partial collection"):
        Collection(out)

    resumed = _index_process(corpus, out, *flags, stderr=subprocess.PIPE, text=True)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0
    resumed_at = re.search(r"resuming at shard (\d+), (\d+) passages already encoded", err)
    assert resumed_at is not None, err
    assert int(resumed_at[1]) >= 3 and int(resumed_at[2]) == 300 * int(resumed_at[1])
    collection, expected = Collection(out), Collection(reference)
    assert collection.manifest.stats["encoding"]["resumed_shards"] >= 3
    for ours, theirs in zip(
        collection.dense_index.shards, expected.dense_index.shards, strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)
