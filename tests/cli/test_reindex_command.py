"""`densekit reindex` with a real model: reindex in one process, search in the next."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from helpers import make_documents, write_corpus, write_judged_dataset
from required import require

LEARNED = "binary(learned=1,bits=64)+rescore*4"


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def index(corpus: Path, out: Path, *flags: str) -> None:
    done = densekit("index", corpus, "--out", out, "--model", "static", "--quiet", *flags)
    assert done.returncode == 0, done.stderr


def search(collection: Path) -> list[list[str]]:
    found = []
    for query in ("topic words", "w12 w40", "doc about nothing"):
        done = densekit("search", collection, query, "-k", "10", "--json")
        assert done.returncode == 0, done.stderr
        found.append([hit["id"] for hit in json.loads(done.stdout)["hits"]])
    return found


def test_reindexed_in_one_process_searched_in_the_next(tmp_path: Path) -> None:
    require("static_model")
    corpus = write_corpus(tmp_path / "corpus.jsonl", make_documents(0, 300))
    index(corpus, tmp_path / "c", "--no-cache")
    flat = search(tmp_path / "c")

    done = densekit("reindex", tmp_path / "c", "--index", LEARNED)
    assert done.returncode == 0, done.stderr
    assert f"reindexed {tmp_path / 'c'}: flat → {LEARNED} over 300 vectors" in done.stdout
    info = densekit("info", tmp_path / "c", "--json")
    assert json.loads(info.stdout)["index"] == LEARNED
    index(corpus, tmp_path / "fresh", "--no-cache", "--index", LEARNED)
    assert search(tmp_path / "c") == search(tmp_path / "fresh")

    assert densekit("reindex", tmp_path / "c", "--index", "flat").returncode == 0
    assert search(tmp_path / "c") == flat


def test_bad_reindex_requests_get_one_line_and_exit_2(tmp_path: Path) -> None:
    require("static_model")
    corpus = write_corpus(tmp_path / "corpus.jsonl", make_documents(0, 40))
    index(corpus, tmp_path / "c", "--no-cache")
    for spec, needle in (
        ("HNSW32+rescore*x", "Grammar"),
        ("binary(learned=1,bits=64)", "needs at least 64 vectors to learn its codes"),
        ("binary(learned=1,bits=4096)", "learned bits from"),
    ):
        done = densekit("reindex", tmp_path / "c", "--index", spec)
        assert done.returncode == 2, done.stderr
        assert needle in done.stderr and "Traceback" not in done.stderr
    done = densekit("reindex", tmp_path / "missing", "--index", "HNSW16")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert search(tmp_path / "c")  # still the flat collection it was


def test_codes_trained_by_adapt_serve_the_next_process(tmp_path: Path) -> None:
    require("static_model")
    from densekit.retrieve import open_collection

    dataset = tmp_path / "judged"
    write_judged_dataset(dataset, 300, every=15)
    index(dataset / "corpus.jsonl", tmp_path / "c", "--no-cache")
    done = densekit(
        "adapt", dataset, "--collection", tmp_path / "c", "--kind", "binary", "--bits", "64",
        "--epochs", "3", "--batch", "8",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "binary head (64 bits) trained on 20 queries, 20 judged pairs" in done.stdout
    assert "now searches binary(learned=1,bits=64)+rescore*2" in done.stdout
    with open_collection(tmp_path / "c") as collection:
        expected = [
            [hit.id for hit in collection.search(q, 10)] for q in ("topic words", "w12 w40")
        ]
    assert search(tmp_path / "c")[:2] == expected

    refused = densekit("adapt", dataset, "--collection", tmp_path / "c", "--kind", "binary",
                       "--bits", "12")  # fmt: skip
    assert refused.returncode == 2 and "multiple of 8" in refused.stderr
