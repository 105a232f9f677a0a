"""`densekit tune` with the bundled MiniLM on a small SciFact collection: the choice is stored,
and the next process's search, info and eval use it; bad input exits 2 and changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED_SCIFACT, write_scifact_subset
from test_cli import run_cli

from densekit.evaluate import load_beir
from densekit.retrieve import Collection, FusionConfig
from densekit.retrieve.fusion import describe_fusion

pytestmark = pytest.mark.slow

TRAIN, TEST, DISTRACTORS = 40, 20, 120
# Built with the dense list alone weighing in, so tuning has something to change.
BUILT_WITH = FusionConfig.hybrid(alpha=1.0)


@pytest.fixture(scope="module")
def scifact_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 judged SciFact queries (40 train, 20 test), their abstracts and some others."""
    query_ids = sorted(load_beir(BUNDLED_SCIFACT).qrels)[: TRAIN + TEST]
    splits = {"train": query_ids[:TRAIN], "test": query_ids[TRAIN:]}
    root = tmp_path_factory.mktemp("data") / "scifact-small"
    return write_scifact_subset(root, splits, DISTRACTORS)


@pytest.fixture(scope="module")
def minilm_collection(scifact_small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collections") / "scifact-small"
    corpus = scifact_small / "corpus.jsonl"
    code = run_in_process("index", corpus, "--out", out, "--quiet", "--alpha", "1.0")
    assert code == 0
    return out


def run_in_process(*args: object) -> int:
    from densekit.cli.main import main

    return main([str(a) for a in args])


@pytest.fixture
def collection(minilm_collection: Path, tmp_path: Path) -> Path:
    """A copy of the collection this test may tune."""
    copy = tmp_path / "collection"
    shutil.copytree(minilm_collection, copy)
    return copy


def densekit(*args: object) -> subprocess.CompletedProcess[str]:
    """`densekit ARGS` in a process of its own."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "densekit.cli.main", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )


def test_tune_then_search_info_and_eval_in_other_processes(
    scifact_small: Path, collection: Path
) -> None:
    tuned = densekit("tune", scifact_small, "--collection", collection)
    assert tuned.returncode == 0, tuned.stderr
    out = tuned.stdout
    assert "scifact-small (train, 40 queries): 64 fusion settings compared by nDCG@10" in out
    assert "chosen:" in out and "5-fold CV:" in out and " ± " in out
    assert "the previous default (convex 1 × dense + 0 × bm25, depth 100)" in out
    assert out.count("  fold ") == 5 and "stored as the default search of" in out
    assert "retrieving (dense)" in tuned.stderr and "retrieving (bm25)" in tuned.stderr

    record = json.loads((collection / "manifest.json").read_text())["fusion_tuning"]
    chosen = FusionConfig.stored(json.loads((collection / "manifest.json").read_text())["fusion"])
    assert chosen != BUILT_WITH and record["previous"] == BUILT_WITH.to_dict()
    assert f"{record['cv_mean']:.4f} ± {record['cv_std']:.4f}" in out

    query = "vitamin D deficiency and cancer risk"
    searched = densekit("search", collection, query, "-k", "10", "--json")
    assert searched.returncode == 0, searched.stderr
    hits = json.loads(searched.stdout)["hits"]
    with Collection(collection) as opened:
        expected = opened.searcher("hybrid", fusion=chosen).search([query], 10)[0]
        before = opened.searcher("hybrid", fusion=BUILT_WITH).search([query], 10)[0]
    assert [(h["id"], round(h["score"], 5)) for h in hits] == [
        (h.id, round(h.score, 5)) for h in expected
    ]
    assert [round(h.score, 5) for h in expected] != [round(h.score, 5) for h in before]

    info = densekit("info", collection)
    assert info.returncode == 0, info.stderr
    rows = {row[:11].strip(): row[12:] for row in info.stdout.splitlines()}
    assert rows["fusion"] == describe_fusion(chosen)
    assert rows["tuned"].startswith(f"on scifact-small (train, 40 queries, {scifact_small}")
    cv = f"nDCG@10 {record['cv_mean']:.4f} ± {record['cv_std']:.4f} in 5-fold CV"
    assert rows["tuned score"].startswith(cv)

    refused = densekit("eval", scifact_small, "--collection", collection, "--split", "train")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("densekit: error: ") and refused.stderr.count("\n") == 1
    assert "tuned on these judgements (scifact-small, split 'train', 40 queries)" in refused.stderr
    evaluated = densekit("eval", scifact_small, "--collection", collection, "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["split"] == "test" and report["retriever"] == "hybrid"
    explicit = densekit(
        "eval", scifact_small, "--collection", collection, "--split", "train", "--alpha", "0.5"
    )
    assert explicit.returncode == 0, explicit.stderr


def test_tune_json_reports_the_choice(capsys, scifact_small: Path, collection: Path) -> None:
    code, out, err = run_cli(
        capsys, "tune", scifact_small, "--collection", collection, "--folds", "4", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["stored"] is True and report["folds"] == 4 and len(report["fold_choices"]) == 4
    assert report["metric"] == "nDCG@10" and report["queries"] == TRAIN
    assert report["previous"] == BUILT_WITH.to_dict()
    assert report["score"] >= report["previous_score"]
    # The grid holds each list alone (weights 1, 0 and 0, 1): the choice never loses to them.
    assert report["score"] >= max(report["parts"].values()) - 1e-9
    assert "retrieving" not in err  # no progress bars around JSON


def test_bad_input_exits_2_and_changes_nothing(
    capsys, scifact_small: Path, collection: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-corpus"
    shutil.copytree(scifact_small, other)
    (other / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\tnot-here-{q}\t1\n" for q in load_beir(scifact_small, "train").qrels)
    )
    few = tmp_path / "few"
    shutil.copytree(scifact_small, few)
    lines = (few / "qrels" / "test.tsv").read_text().splitlines()[:12]
    (few / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    bm25_only = tmp_path / "bm25-only"
    flags = ["--out", bm25_only, "--retriever", "bm25", "--quiet"]
    assert run_cli(capsys, "index", scifact_small / "corpus.jsonl", *flags)[0] == 0
    cases = [
        ([other, "--collection", collection], "none of the 40 document ids judged in split"),
        ([few, "--collection", collection, "--split", "test"], "tuning needs at least 20"),
        ([scifact_small, "--collection", bm25_only], "has no dense index"),
        ([scifact_small, "--collection", collection, "--metric", "nDCG@x"], "unknown metric"),
        ([scifact_small, "--collection", collection, "--folds", "1"], "folds must be"),
        ([scifact_small, "--collection", collection, "--split", "dev"], "no qrels for split"),
    ]
    before = {d: (d / "manifest.json").read_bytes() for d in (collection, bm25_only)}
    for args, message in cases:
        code, _, err = run_cli(capsys, "tune", *args)
        assert code == 2, (args, err)
        assert err.startswith("densekit: error: ") and err.count("\n") == 1, err
        assert message in err and "Traceback" not in err, err
    assert {d: (d / "manifest.json").read_bytes() for d in before} == before
