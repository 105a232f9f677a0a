from __future__ import annotations

import json
from pathlib import Path

from conftest import DOCUMENTS, write_jsonl
from test_cli import run_cli


def test_make_queries_command(capsys, tmp_path: Path) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", DOCUMENTS)
    out = tmp_path / "set"
    code, stdout, _ = run_cli(
        capsys,
        "make-queries",
        corpus,
        "--task",
        "span",
        "--span-tokens",
        "4",
        "--n",
        "3",
        "--out",
        out,
    )
    assert code == 0 and "3 span queries" in stdout
    code, _, err = run_cli(
        capsys, "make-queries", corpus, "--task", "span", "--n", "3", "--out", out
    )
    assert code == 2 and "exists" in err and "Traceback" not in err


def test_the_limit_task_writes_a_beir_folder_from_nothing(capsys, tmp_path: Path) -> None:
    out = tmp_path / "limit"
    code, stdout, _ = run_cli(capsys, "make-queries", "--task", "limit", "--out", out)
    assert code == 0 and "1000 queries over 46 people" in stdout
    card = json.loads((out / "densekit_queries.json").read_text())
    assert card["task"] == "limit" and card["docs"] == 46 and card["k"] == 2
    code, _, err = run_cli(capsys, "make-queries", "c.jsonl", "--task", "limit", "--out", out)
    assert code == 2 and "give no corpus file" in err
    code, _, err = run_cli(capsys, "make-queries", "--task", "span", "--out", tmp_path / "s")
    assert code == 2 and "give its file" in err
