from __future__ import annotations

import json
from pathlib import Path

from test_cli import run_cli

from densekit.evaluate import load_beir


def judged_in_two_splits(tiny_beir: Path) -> Path:
    """tiny_beir with a train split too: q3 shares d3 with q1, q4 repeats q2's text."""
    with (tiny_beir / "queries.jsonl").open("a", encoding="utf-8") as queries:
        queries.write(json.dumps({"_id": "q3", "text": "bone fractures"}) + "\n")
        queries.write(json.dumps({"_id": "q4", "text": "Loyal  DOGS"}) + "\n")
        queries.write(json.dumps({"_id": "q5", "text": "salmon"}) + "\n")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq3\td3\t1\nq4\td1\t1\nq5\td4\t1\n", encoding="utf-8"
    )
    return tiny_beir


def test_split_by_document_writes_a_disjoint_beir_folder(capsys, tiny_beir, tmp_path) -> None:
    data = judged_in_two_splits(tiny_beir)
    out = tmp_path / "split"
    code, stdout, _ = run_cli(
        capsys,
        "split",
        data,
        "--by",
        "document",
        "--out",
        out,
        "--test-share",
        "0.4",
        "--seed",
        "5",
    )
    assert code == 0
    assert "3 train and 2 test queries" in stdout and "none dropped" in stdout
    assert "3 groups of queries linked by relevant documents or text (largest 2)" in stdout
    train, test = load_beir(out, "train"), load_beir(out, "test")
    assert set(test.qrels) == {"q2", "q4"}  # linked by their text: one side together
    assert train.qrels | test.qrels == {
        "q1": {"d3": 1, "d5": 2},
        "q2": {"d2": 1},
        "q3": {"d3": 1},
        "q4": {"d1": 1},
        "q5": {"d4": 1},
    }

    code, stdout, _ = run_cli(
        capsys, "split", data, "--by", "query", "--out", out, "--overwrite", "--json"
    )
    report = json.loads(stdout)
    assert code == 0 and report["by"] == "query" and report["from_splits"] == ["test", "train"]
    assert report["test_queries"] + report["train_queries"] == 5


def test_split_errors_name_the_problem(capsys, tiny_beir, tmp_path) -> None:
    out = tmp_path / "split"
    out.mkdir()
    (out / "kept.txt").write_text("mine")
    cases = [
        (["--out", out], "exists and is not empty; pass --overwrite"),
        (["--out", tmp_path / "a", "--test-share", "1"], "--test-share must be between 0 and 1"),
        (["--out", tmp_path / "b", "--from-split", "train"], "no qrels for split 'train'"),
    ]
    for flags, message in cases:
        code, _, err = run_cli(capsys, "split", tiny_beir, "--by", "document", *flags)
        assert code == 2 and message in err and "Traceback" not in err
    assert (out / "kept.txt").read_text() == "mine"
