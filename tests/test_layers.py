"""The package's shape: imports point down the layers of DESIGN.md, no cycles, small modules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "densekit"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(source_root: Path) -> subprocess.CompletedProcess[str]:
    """Check the contracts in pyproject.toml against the package under ``source_root``."""
    env = {**os.environ, "PYTHONPATH": str(source_root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        env=env,
        cwd=source_root,
        timeout=300,
    )


def test_the_layers_and_acyclicity_hold() -> None:
    result = lint_imports(ROOT / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_import_pointing_up_breaks_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "densekit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    layout = copy / "store" / "layout.py"
    layout.write_text(layout.read_text() + "\nfrom densekit.retrieve import fusion  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "densekit.store.layout -> densekit.retrieve.fusion" in result.stdout


def test_a_cycle_breaks_the_check(tmp_path: Path) -> None:
    copy = tmp_path / "densekit"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # ids sits below shards in the same layer; a back edge makes a cycle, not a layer breach.
    ids = copy / "files" / "ids.py"
    ids.write_text(ids.read_text() + "\nfrom densekit.files import shards  # noqa\n")
    shards = copy / "files" / "shards.py"
    shards.write_text(shards.read_text() + "\nfrom densekit.files import ids  # noqa\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "No cycles are allowed in densekit.files" in result.stdout


def test_no_module_passes_400_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, f"split these modules (one concept each): {long}"
