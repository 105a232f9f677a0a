"""`densekit limits free-embedding`: measures, writes, resumes, refuses bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from test_cli import run_cli

FLAGS = ["--k", "2", "--dims", "2,3", "--max-steps", "400", "--device", "cpu", "--no-progress"]


def limits(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "densekit.cli.main", "limits", "free-embedding"]
    return subprocess.run(
        [*command, *FLAGS, "--out", str(out), *extra], capture_output=True, text=True, timeout=600
    )


def test_the_experiment_writes_each_dimension_and_a_rerun_resumes(tmp_path: Path) -> None:
    out = tmp_path / "free"
    first = limits(out)
    assert first.returncode == 0, first.stderr
    record = json.loads((out / "free_embedding.json").read_text())
    assert record["k"] == 2 and record["settings"]["max_steps"] == 400
    for d in ("2", "3"):
        entry = record["dims"][d]
        critical = entry["critical_n"]
        runs = {int(n): run for n, run in entry["runs"].items()}
        # The critical n solved; the next n was tried and failed.
        assert runs[critical]["solved"] and not runs[critical + 1]["solved"]
    assert record["dims"]["3"]["critical_n"] >= record["dims"]["2"]["critical_n"]
    assert (out / "free_embedding.png").stat().st_size > 0
    assert "critical n" in first.stdout
    again = limits(out, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["dims"] == record["dims"]  # nothing measured again


def test_other_settings_in_the_same_folder_are_refused(tmp_path: Path, capsys) -> None:
    out = tmp_path / "free"
    args = ["limits", "free-embedding", "--dims", "2", "--max-steps", "50", "--no-progress"]
    assert run_cli(capsys, *args, "--out", out)[0] == 0
    code, _, err = run_cli(capsys, *args, "--out", out, "--seed", "7")
    assert code == 2 and "other settings" in err and "Traceback" not in err


def test_bad_dimensions_and_k_exit_2(tmp_path: Path, capsys) -> None:
    base = ["limits", "free-embedding", "--out", tmp_path / "x", "--no-progress"]
    code, _, err = run_cli(capsys, *base, "--dims", "4,x")
    assert code == 2 and "--dims '4,x'" in err
    code, _, err = run_cli(capsys, *base, "--dims", "4", "--k", "0")
    assert code == 2 and "--k 0" in err
    code, _, err = run_cli(capsys, *base, "--dims", "0")
    assert code == 2 and "dimension 0" in err


def test_sign_rank_reports_bounds_and_says_when_k_varies(tmp_path: Path, capsys) -> None:
    qrels = tmp_path / "qrels.tsv"
    rows = ["q1\ta\t1", "q2\ta\t1", "q2\tb\t1", "q3\tc\t1", "q3\tb\t1", "q4\tc\t1"]
    qrels.write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    args = ["limits", "sign-rank", qrels, "--max-steps", "2000", "--device", "cpu"]
    code, stdout, err = run_cli(capsys, *args)
    assert code == 0 and "1 to 2 relevant documents" in err
    assert "lower bound: 1 dimension " in stdout and "suffice (an exact fit found)" in stdout
    code, stdout, _ = run_cli(capsys, *args, "--json")
    report = json.loads(stdout)
    assert report["relevant_per_query"] == {"1": 2, "2": 2} and report["upper_fitted"]
    code, _, err = run_cli(capsys, "limits", "sign-rank", tmp_path / "missing.tsv")
    assert code == 2 and "cannot read the qrels" in err
