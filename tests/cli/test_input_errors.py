"""Bytes that are not UTF-8, ids that break the id rules and readers that leave early: one line
`densekit: error: ...` and exit 2 (or a quiet exit), never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from required import require
from test_cli import run_cli


@pytest.fixture
def static_collection(capsys, tiny_beir: Path, tmp_path: Path) -> Path:
    require("static_model")
    out = tmp_path / "c"
    flags = ["--model", "static", "--quiet", "--no-cache"]
    code, _, err = run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", out, *flags)
    assert code == 0, err
    return out


def densekit(*args: str | bytes | Path, stdout: int | None = subprocess.PIPE):
    """A real `densekit` process; arguments may be bytes, as a shell passes them."""
    command = [os.fsencode(sys.executable), b"-m", b"densekit.cli.main"]
    command += [a if isinstance(a, bytes) else os.fsencode(str(a)) for a in args]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, check=False)


def one_error_line(stderr: bytes) -> str:
    lines = stderr.decode("utf-8", "backslashreplace").splitlines()
    assert len(lines) == 1 and lines[0].startswith("densekit: error: "), lines
    return lines[0]


def ids(capsys, collection: Path) -> set[str]:
    code, out, err = run_cli(capsys, "search", collection, "vitamin", "-k", "50", "--json")
    assert code == 0, err
    return {hit["id"] for hit in json.loads(out)["hits"]}


def test_ids_file_with_bytes_that_are_not_utf8_names_file_and_line(
    capsys, static_collection: Path, tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.txt"
    ids_file.write_bytes(b"d1\ncaf\xe9\n")
    code, _, err = run_cli(capsys, "delete", static_collection, "--ids-file", ids_file)
    assert code == 2
    assert f"{ids_file}:2: not valid UTF-8 (byte 3 of the line: b'\\xe9\\n')" in err
    assert len(ids(capsys, static_collection)) == 5  # nothing deleted


def test_vector_ids_with_bytes_that_are_not_utf8_name_file_and_line(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    np.save(tmp_path / "v.npy", np.random.default_rng(0).normal(size=(5, 8)).astype("float32"))

    def index_with(ids_file: Path) -> tuple[int, str, str]:
        corpus, out = tiny_beir / "corpus.jsonl", tmp_path / "given"
        given = ["--vectors", tmp_path / "v.npy", "--vector-ids", ids_file, "--quiet"]
        return run_cli(capsys, "index", corpus, "--out", out, *given)

    (tmp_path / "ids.txt").write_bytes(b"d1\nd2\nd3\nd4\nd\xff5\n")
    code, _, err = index_with(tmp_path / "ids.txt")
    assert code == 2 and f"{tmp_path / 'ids.txt'}:5: not valid UTF-8" in err
    (tmp_path / "ids.json").write_text('["d1", "d2", "d3", "d4", 5]')
    code, _, err = index_with(tmp_path / "ids.json")
    assert code == 2 and "ids.json: item 4: id 5 is a number, not a string" in err


def test_an_ids_file_nested_too_deeply_is_one_line(
    capsys, static_collection: Path, tmp_path: Path
) -> None:
    ids_file = tmp_path / "ids.json"
    ids_file.write_text("[" * 100_000 + "]" * 100_000)
    code, _, err = run_cli(capsys, "delete", static_collection, "--ids-file", ids_file)
    assert code == 2 and f"{ids_file}: JSON nested too deeply to read" in err


def test_arguments_that_are_not_utf8_are_refused_by_name(static_collection: Path) -> None:
    searched = densekit("search", static_collection, b"caf\xe9", "--retriever", "dense")
    assert searched.returncode == 2
    assert "the query b'caf\\xe9' is not valid UTF-8" in one_error_line(searched.stderr)
    deleted = densekit("delete", static_collection, b"d1", b"caf\xe9")
    assert deleted.returncode == 2
    assert "id b'caf\\xe9' is not valid UTF-8" in one_error_line(deleted.stderr)


def test_a_reader_that_leaves_early_ends_the_command_quietly(static_collection: Path) -> None:
    # `densekit info DIR | head -1`, without the race: the reader is gone before any write.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = densekit("info", static_collection, stdout=write_end)
    finally:
        os.close(write_end)
    assert done.returncode == 0
    assert done.stderr == b""


def test_ids_file_comments_and_ids_with_hashes(
    capsys, tiny_beir: Path, static_collection: Path, tmp_path: Path
) -> None:
    corpus = tmp_path / "more.jsonl"
    corpus.write_text(
        json.dumps({"_id": "c#1", "text": "vitamin c"})
        + "\n"
        + json.dumps({"_id": "#tag", "text": "vitamin tag"})
        + "\n"
    )
    code, _, err = run_cli(capsys, "add", static_collection, corpus, "--quiet")
    assert code == 0, err
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# old documents\n  d1  # the cat\n\nc#1\n")
    code, _, err = run_cli(capsys, "delete", static_collection, "--ids-file", ids_file)
    assert code == 0, err
    assert {"d1", "c#1"}.isdisjoint(ids(capsys, static_collection))
    (tmp_path / "ids.json").write_text('["#tag"]')
    code, _, err = run_cli(capsys, "delete", static_collection, "--ids-file", tmp_path / "ids.json")
    assert code == 0, err
    assert "#tag" not in ids(capsys, static_collection)


def test_bench_index_queries_that_are_not_utf8_name_the_line(
    capsys, static_collection: Path, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_bytes(b"vitamin\n\xff\n")
    code, _, err = run_cli(
        capsys, "bench-index", static_collection, "--specs", "flat", "--queries", queries
    )
    assert code == 2 and f"{queries}:2: not valid UTF-8" in err
