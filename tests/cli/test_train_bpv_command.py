"""`densekit train-bpv` and the `bpv:DIR` encoder, one command per process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import topic_documents, write_corpus


def densekit(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)


def test_trained_in_one_process_indexed_in_the_next_searched_from_elsewhere(
    tmp_path: Path,
) -> None:
    write_corpus(tmp_path / "corpus.jsonl", topic_documents(topics=3, per_topic=20))
    trained = densekit(
        "train-bpv", "corpus.jsonl", "--out", "bpv", "--bits", "16", "--epochs", "40",
        "--batch", "16", "--min-count", "1", "--quiet", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert report["documents"] == 60 and report["bits"] == 16

    built = densekit(
        "index", "corpus.jsonl", "--model", "bpv:bpv", "--out", "c", "--index", "binary",
        "--retriever", "dense", "--quiet", "--no-cache", cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    info = json.loads(densekit("info", tmp_path / "c", "--json").stdout)
    assert info["model"]["name"] == f"bpv:{tmp_path / 'bpv'}" and info["index"] == "binary"

    done = densekit(
        "search", tmp_path / "c", "topic1word2 topic1word8 topic1word11", "-k", "5", "--json",
        cwd=Path("/"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert all(hit["id"].startswith("t1-") for hit in json.loads(done.stdout)["hits"])

    shutil.rmtree(tmp_path / "bpv")
    gone = densekit("search", tmp_path / "c", "topic1word2", "--json")
    assert gone.returncode == 2
    assert "train-bpv CORPUS --out" in gone.stderr and "Traceback" not in gone.stderr


def test_bad_bpv_requests_get_one_line_and_exit_2(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus.jsonl", topic_documents(topics=2, per_topic=4))
    for args, needle in (
        (("train-bpv", corpus, "--out", tmp_path / "m", "--bits", "12"), "multiple of 8"),
        (("train-bpv", corpus, "--out", tmp_path / "m", "--real-dim", "-1"), "real_dim"),
        (("train-bpv", corpus, "--out", tmp_path / "m", "--min-count", "99"), "--min-count"),
        (("train-bpv", tmp_path / "none.jsonl", "--out", tmp_path / "m"), "no such file"),
        (("index", corpus, "--model", "bpv:nowhere", "--out", tmp_path / "c"), "train-bpv"),
    ):
        done = densekit(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert not (tmp_path / "m").exists()
