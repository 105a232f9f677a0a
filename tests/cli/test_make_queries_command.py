from __future__ import annotations

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
