"""`densekit eval --layers/--dim`: a fresh build with part of a 2D Matryoshka model."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import run_cli

CUT = ["--layers", "2", "--dim", "64"]


def eval_run(capsys: pytest.CaptureFixture[str], dataset: Path, out: Path, *flags: object) -> str:
    code, _, err = run_cli(
        capsys, "eval", dataset, "--retriever", "dense", "--run-out", out, *flags
    )
    assert code == 0, err
    return out.read_text(encoding="utf-8")


def test_eval_builds_with_the_cut_that_index_records(capsys, tiny_beir: Path, tmp_path: Path):
    fresh = eval_run(capsys, tiny_beir, tmp_path / "fresh.trec", *CUT)
    indexed = tmp_path / "indexed"
    flags = ["--retriever", "dense", "--quiet", "--no-cache", *CUT]
    code, _, err = run_cli(capsys, "index", tiny_beir / "corpus.jsonl", "--out", indexed, *flags)
    assert code == 0, err
    stored = eval_run(capsys, tiny_beir, tmp_path / "stored.trec", "--collection", indexed)
    assert fresh == stored
    assert eval_run(capsys, tiny_beir, tmp_path / "full.trec") != fresh  # the cut changed scores


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--collection", "build/x", "--layers", "2"], "--collection was built with its own"),
        (["--dim", "64", "--pipeline", "p.toml"], "do not combine with --pipeline"),
        (["--run", "run.trec", "--dim", "64"], "--run scores a finished run; drop --dim"),
    ],
)
def test_cuts_are_refused_where_eval_builds_nothing(
    capsys, tiny_beir: Path, flags: list[str], message: str
) -> None:
    code, _, err = run_cli(capsys, "eval", tiny_beir, *flags)
    assert code == 2
    assert err.startswith("densekit: error: ") and message in err, err


def test_eval_takes_trec_eval_names_and_refuses_an_uncomputable_measure(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    bm25 = ["--retriever", "bm25"]
    code, out, err = run_cli(capsys, "eval", tiny_beir, *bm25, "--metrics", "ndcg_cut.10,P_5")
    assert code == 0, err
    assert "nDCG@10" in out and "P@5" in out
    code, _, err = run_cli(capsys, "eval", tiny_beir, *bm25, "--metrics", "ERR@10")
    assert code == 2 and err.startswith("densekit: error: metric 'ERR@10'"), err
    assert "Traceback" not in err
