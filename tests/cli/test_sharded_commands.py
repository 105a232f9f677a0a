"""A sharded collection through the CLI: built in one process, used in the next ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import assert_same_ranking
from required import require


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def test_index_shards_then_search_eval_and_info_in_other_processes(
    tiny_beir: Path, tmp_path: Path
) -> None:
    require("static_model")
    flags = ["--model", "static", "--quiet", "--no-cache"]
    whole, sharded = tmp_path / "whole", tmp_path / "sharded"
    corpus = tiny_beir / "corpus.jsonl"
    assert densekit("index", corpus, "--out", whole, *flags).returncode == 0
    built = densekit("index", corpus, "--out", sharded, "--shards", "2", *flags)
    assert built.returncode == 0, built.stderr
    assert "5 documents in 2 shards (2, 3)" in built.stdout

    for retriever in ("dense", "bm25", "hybrid"):
        found = [
            json.loads(densekit("search", c, "vitamin D bones", "--retriever", retriever,
                                "--json").stdout)["hits"]
            for c in (sharded, whole)
        ]  # fmt: skip
        mine, theirs = ([(hit["id"], hit["score"]) for hit in hits] for hits in found)
        assert_same_ranking(mine, theirs)

    scores = [
        json.loads(densekit("eval", tiny_beir, "--collection", c, "--json").stdout)["metrics"]
        for c in (sharded, whole)
    ]
    assert scores[0] == pytest.approx(scores[1])

    shown = densekit("info", sharded)
    assert shown.returncode == 0, shown.stderr
    assert "shards      2 by document id hash, documents 2, 3" in shown.stdout
    assert "documents   5" in shown.stdout


def test_changes_go_to_their_shards_and_the_next_process_sees_them(
    tiny_beir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sharded"
    corpus = tiny_beir / "corpus.jsonl"
    built = densekit("index", corpus, "--out", out, "--shards", "2", "--retriever", "bm25")
    assert built.returncode == 0, built.stderr
    deleted = densekit("delete", out, "d1")
    assert deleted.returncode == 0, deleted.stderr
    found = json.loads(densekit("search", out, "cat mat", "--json").stdout)["hits"]
    assert "d1" not in [hit["id"] for hit in found]
    checked = densekit("check", out)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "(generation 2 shards)" in checked.stdout and "result     ok" in checked.stdout
    refused = densekit("compact", out)
    assert refused.returncode == 2
    assert "a sharded collection" in refused.stderr and "Traceback" not in refused.stderr
    too_many = densekit("index", corpus, "--out", tmp_path / "x", "--shards", "9")
    assert too_many.returncode == 2 and "use fewer shards" in too_many.stderr


def test_reshard_in_one_process_search_in_the_next(tiny_beir: Path, tmp_path: Path) -> None:
    require("static_model")
    flags = ["--model", "static", "--quiet", "--no-cache"]
    whole, out = tmp_path / "whole", tmp_path / "c"
    corpus = tiny_beir / "corpus.jsonl"
    for directory in (whole, out):
        assert densekit("index", corpus, "--out", directory, *flags).returncode == 0
    done = densekit("reshard", out, "--shards", "2", "--quiet")
    assert done.returncode == 0, done.stderr
    assert "resharded" in done.stdout and "5 documents in 2 shards (2, 3)" in done.stdout
    found = [
        json.loads(densekit("search", c, "vitamin D bones", "--json").stdout)["hits"]
        for c in (out, whole)
    ]
    assert_same_ranking(*([(h["id"], h["score"]) for h in hits] for hits in found))
    again = densekit("reshard", out, "--shards", "2")
    assert again.returncode == 2 and "already 2 shards" in again.stderr
    assert "Traceback" not in again.stderr
