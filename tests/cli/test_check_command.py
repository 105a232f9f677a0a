"""`densekit check` and `info --verify` as a user meets them: exit 0 whole, 1 damaged, 2 when
there is no collection to check (one line, no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import HashingEncoder

from densekit.cli.main import main
from densekit.retrieve import build_collection
from densekit.store import BuildOptions


def run_cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("repair", [[], ["--repair"]])
def test_no_collection_is_one_line_and_exit_2(
    repair: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for where, said in [(tmp_path / "nowhere", "no such collection"), (tmp_path, "not a densekit")]:
        code, out, err = run_cli(capsys, "check", where, *repair)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert err.startswith("densekit: error: ") and said in err


def test_info_verify_mentions_leftovers_and_check_lists_them(
    corpus_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "c"
    build_collection(
        corpus_file, out_dir, BuildOptions(progress=False, cache_dir=None), encoder=HashingEncoder()
    ).close()
    (out_dir / "gen-20200101T000000-0badcafe").mkdir()  # as a killed write leaves it
    code, out, _ = run_cli(capsys, "info", out_dir, "--verify")
    assert code == 0 and "1 leftovers (densekit check --repair removes them)" in out
    code, out, _ = run_cli(capsys, "check", out_dir)
    assert code == 0 and "leftover   gen-20200101T000000-0badcafe: a generation" in out
    code, out, _ = run_cli(capsys, "check", out_dir, "--repair")
    assert code == 0 and "removed    gen-20200101T000000-0badcafe" in out
    assert "leftover " not in out and not (out_dir / "gen-20200101T000000-0badcafe").exists()
