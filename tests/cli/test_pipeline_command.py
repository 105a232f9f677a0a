"""`densekit pipeline show` and `--pipeline` on search and eval, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from required import require
from test_cli import run_cli

PIPELINE = """
name = "both"
[[candidates]]
retriever = "dense"
k = 5
[[candidates]]
retriever = "bm25"
k = 5
[fusion]
method = "rrf"
k = 10
"""


def test_show_search_and_eval_with_a_pipeline(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    require("static_model")
    pipeline = tmp_path / "both.toml"
    pipeline.write_text(PIPELINE, encoding="utf-8")
    code, out, err = run_cli(capsys, "pipeline", "show", pipeline)
    assert code == 0 and "fuse the 2 lists by reciprocal rank fusion" in out, err
    code, out, _ = run_cli(capsys, "pipeline", "show", pipeline, "--json")
    assert json.loads(out)["fusion"] == {"method": "rrf", "k": 10, "depth": 100}

    collection = tmp_path / "c"
    flags = ["--model", "static", "--quiet", "--no-cache"]
    assert run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", collection, *flags)[0] == 0
    code, out, err = run_cli(
        capsys, "search", collection, "loyal dogs", "--pipeline", pipeline, "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["retriever"] == "pipeline both" and result["hits"][0]["id"] == "d2"
    code, out, err = run_cli(
        capsys, "eval", tiny_beir, "--collection", collection, "--pipeline", pipeline, "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["retriever"] == "pipeline both"
    assert [stage["stage"] for stage in report["stages"]] == ["dense", "bm25"]


def test_pipeline_mistakes_exit_2(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[candidates]]\nretriever = "dense"\nk = -1\n', encoding="utf-8")
    code, _, err = run_cli(capsys, "pipeline", "show", bad)
    assert code == 2 and "candidates[1].k must be a whole number" in err
    assert "Traceback" not in err
    good = tmp_path / "good.toml"
    good.write_text('[[candidates]]\nretriever = "bm25"\n', encoding="utf-8")
    collection = tmp_path / "c"
    flags = ["--retriever", "bm25", "--quiet"]
    assert run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", collection, *flags)[0] == 0
    code, _, err = run_cli(
        capsys, "search", collection, "dogs", "--pipeline", good, "--retriever", "bm25"
    )
    assert code == 2 and "--pipeline names its own retrievers" in err
    code, _, err = run_cli(capsys, "search", collection, " ", "--pipeline", good)
    assert code == 2 and "query 1 is empty" in err


def test_sparse_index_from_the_cli(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    require("cognition")
    collection = tmp_path / "c"
    flags = ["--retriever", "bm25", "--sparse", "splade-tiny", "--quiet"]
    code, _, err = run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", collection, *flags)
    assert code == 0, err
    code, out, err = run_cli(capsys, "search", collection, "puppies", "--retriever", "splade")
    assert code == 0 and "d2" in out.splitlines()[0], err
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(
        '[[candidates]]\nretriever = "splade"\n[[candidates]]\nretriever = "bm25"\n',
        encoding="utf-8",
    )
    code, out, err = run_cli(
        capsys, "eval", tiny_beir, "--collection", collection, "--pipeline", pipeline
    )
    assert code == 0 and "nDCG@10" in out, err
    code, _, err = run_cli(
        capsys, "index", tiny_beir / "corpus.jsonl", "--out", tmp_path / "x", "--sparse", "minilm"
    )
    assert code == 2 and "could not load sparse model" in err
