"""Multi-vector from the command line: index in one process, describe, search and evaluate in
others; what bad input gets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import DOCUMENTS, write_jsonl


def densekit(*args: object, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)


def refused(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in done.stderr, done.stderr


def test_index_then_info_search_and_eval_in_other_processes(
    tiny_beir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "c"
    built = densekit(
        "index", tiny_beir / "corpus.jsonl", "--retriever", "multivector", "--multivector",
        "minilm", "--out", out, "--quiet",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    info = densekit("info", out)
    assert "multivector" in info.stdout and "token vectors" in info.stdout
    shown = json.loads(densekit("info", out, "--json").stdout)
    assert shown["multivector"]["token_index"] == "SQ8"
    found = densekit("search", out, "vitamin D", "-k", "2", "--json")  # the default retriever
    assert json.loads(found.stdout)["retriever"] == "multivector"
    scored = densekit("eval", tiny_beir, "--collection", out, "--metrics", "nDCG@10", "--json")
    assert scored.returncode == 0, scored.stderr
    assert json.loads(scored.stdout)["retriever"] == "multivector"


def test_bad_multivector_input_is_one_line_and_exit_status_2(
    tiny_beir: Path, tmp_path: Path
) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    refused(
        densekit("index", corpus, "--retriever", "multivector", "--out", tmp_path / "a"),
        "--multivector MODEL",
    )
    refused(
        densekit("index", corpus, "--multivector", "./no/such/model", "--out", tmp_path / "b"),
        "no/such/model",
    )
    assert not (tmp_path / "b").exists()
    refused(densekit("eval", tiny_beir, "--retriever", "multivector"), "--multivector MODEL")
    refused(
        densekit("train", tiny_beir, "--loss", "colbert", "--out", tmp_path / "m"),
        "--collection DIR",
    )
    refused(
        densekit(
            "train", tiny_beir, "--loss", "colbert", "--config", "x.toml", "--out", tmp_path / "m"
        ),
        "--config",
    )


def test_a_model_named_by_a_relative_path_is_found_from_anywhere(tmp_path: Path) -> None:
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.encode.registry import resolve_model

    LateInteractionEncoder(resolve_model("minilm").location).save(tmp_path / "model")
    write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    built = densekit(
        "index", "corpus.jsonl", "--retriever", "bm25", "--multivector", "model", "--out", "c",
        "--quiet", cwd=tmp_path,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    found = densekit("search", tmp_path / "c", "salmon", "--retriever", "multivector", cwd="/")
    assert found.returncode == 0, found.stderr
