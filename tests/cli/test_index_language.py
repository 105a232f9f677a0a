"""`densekit index --language`: chosen in one command, used by the next one's queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_cli import run_cli

ZH = Path(__file__).resolve().parents[1] / "data" / "zh-small"
CLI = [sys.executable, "-m", "densekit.cli.main"]


def test_a_chinese_collection_is_searched_by_bigrams_in_a_later_process(
    capsys, tmp_path: Path
) -> None:
    out = tmp_path / "zh"
    flags = ["--retriever", "bm25", "--language", "zh", "--quiet"]
    assert run_cli(capsys, "index", ZH / "corpus.jsonl", "--out", out, *flags)[0] == 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    found = subprocess.run(
        [*CLI, "search", str(out), "长城有多长", "-k", "1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(found.stdout)["hits"][0]["id"] == "p05"
    shown = subprocess.run(
        [*CLI, "info", str(out), "--json"], capture_output=True, text=True, env=env, check=True
    )
    bm25 = json.loads(shown.stdout)["bm25"]
    assert (bm25["language"], bm25["stemmer"], bm25["stopwords"]) == ("zh", "cjk-bigrams", "zh")


def test_index_refuses_an_unknown_language_or_a_conflicting_stemmer(capsys, tmp_path) -> None:
    corpus = ZH / "corpus.jsonl"
    code, _, err = run_cli(capsys, "index", corpus, "--out", tmp_path / "x", "--language", "xx")
    assert code == 2 and "unknown BM25 language 'xx'; choose one of en, de" in err
    code, _, err = run_cli(
        capsys,
        "index",
        corpus,
        "--out",
        tmp_path / "y",
        "--retriever",
        "bm25",
        "--language",
        "de",
        "--stemmer",
        "french",
    )
    assert code == 2 and "--language de sets the stemmer 'german' itself" in err
    assert not (tmp_path / "y").exists()
