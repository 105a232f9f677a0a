"""`densekit compare` over run files and a collection, as a researcher runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import run_cli


def write_run(path: Path, rankings: dict[str, list[str]]) -> Path:
    lines = [
        f"{query} Q0 {doc} {rank + 1} {10 - rank} test"
        for query, docs in rankings.items()
        for rank, doc in enumerate(docs)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, Path]:
    # tiny_beir's judgements: q1 -> d3 (1), d5 (2); q2 -> d2 (1).
    good = write_run(tmp_path / "good.trec", {"q1": ["d5", "d3", "d1"], "q2": ["d2", "d4"]})
    poor = write_run(tmp_path / "poor.trec", {"q1": ["d1", "d4", "d3"], "q2": ["d4", "d2"]})
    return good, poor


def test_compare_tables_runs_and_a_collection_against_a_baseline(
    capsys, tiny_beir: Path, tmp_path: Path, runs: tuple[Path, Path]
) -> None:
    good, poor = runs
    collection = tmp_path / "bm25-docs"
    assert (
        run_cli(
            capsys,
            "index",
            tiny_beir / "corpus.jsonl",
            "--out",
            collection,
            "--retriever",
            "bm25",
            "--quiet",
        )[0]
        == 0
    )
    code, out, err = run_cli(
        capsys,
        "compare",
        f"weak={poor}",
        good,
        collection,
        "--dataset",
        tiny_beir,
        "--metrics",
        "nDCG@10,ndcg_cut.3,RR@10",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["baseline"] == "weak" and result["correction"] == "holm"
    assert list(result["scores"]) == ["weak", "good", "bm25-docs"]
    assert result["measures"] == ["nDCG@10", "nDCG@3", "RR@10"]
    assert result["scores"]["good"]["RR@10"] == 1.0
    tests = {(t["system"], t["measure"]): t for t in result["tests"]}
    assert len(tests) == 6  # 2 systems x 3 measures, each against the baseline
    win = tests[("good", "RR@10")]
    assert (win["wins"], win["ties"], win["losses"]) == (2, 0, 0)
    assert win["t_test_p_corrected"] >= win["t_test_p"]
    assert set(result["by_cutoff"]["good"]) == {"nDCG", "RR"}

    code, out, _ = run_cli(capsys, "compare", poor, good, "--dataset", tiny_beir)
    assert code == 0 and "poor (baseline)" in out and "win/tie/loss" in out


@pytest.mark.parametrize("suffix", [".html", ".md"])
def test_compare_writes_a_report_with_plots(
    capsys, tiny_beir: Path, tmp_path: Path, runs: tuple[Path, Path], suffix: str
) -> None:
    good, poor = runs
    report = tmp_path / f"report{suffix}"
    code, _, err = run_cli(
        capsys, "compare", poor, good, "--dataset", tiny_beir, "--report", report
    )
    assert code == 0, err
    text = report.read_text(encoding="utf-8")
    assert "good" in text and "poor (baseline)" in text and "win/tie/loss" in text
    if suffix == ".html":  # per-query differences; nDCG, R, RR and AP by cutoff
        assert text.count("data:image/png;base64,") == 5
    else:
        plots = sorted(p.name for p in (tmp_path / "report-plots").iterdir())
        assert plots == [
            "AP-by-cutoff.png",
            "R-by-cutoff.png",
            "RR-by-cutoff.png",
            "nDCG-by-cutoff.png",
            "per-query-differences.png",
        ]
        assert "](report-plots/per-query-differences.png)" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "compare needs two systems or more"),
        (["--baseline", "nope"], "baseline 'nope' is none of the systems"),
        (["--report", "out.pdf"], "a report is .html or .md"),
        (["missing.trec"], "missing.trec: no such run file or collection directory"),
    ],
)
def test_compare_refuses_bad_input_without_a_traceback(
    capsys, tiny_beir: Path, runs: tuple[Path, Path], extra: list[str], message: str
) -> None:
    good, poor = runs
    systems: list[object] = [good] if not extra else [good, poor]
    if extra and not extra[0].startswith("--"):
        systems, extra = [good, *extra], []
    code, _, err = run_cli(capsys, "compare", *systems, "--dataset", tiny_beir, *extra)
    assert code == 2 and message in err and "Traceback" not in err, err


def test_eval_compare_tests_others_against_this_evaluation(
    capsys, tiny_beir: Path, runs: tuple[Path, Path]
) -> None:
    good, poor = runs
    code, out, err = run_cli(capsys, "eval", tiny_beir, "--run", good, "--compare", poor, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["baseline"] == "eval" and list(result["scores"]) == ["eval", "poor"]
