"""benchmarks/_common.py's environment record: every results JSON says where and with what its
numbers were measured. The benchmarks are scripts, not a package: the module is loaded by path."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from densekit.encode import allocator

COMMON = Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py"


@pytest.fixture(scope="module")
def common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("benchmarks_common", COMMON)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_environment_names_revision_machine_libraries_and_allocator(
    common: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(allocator, "_applied", True)
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    record = common.environment()
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=COMMON.parent, capture_output=True, text=True
    )
    expected_commit = head.stdout.strip() if head.returncode == 0 else "unknown"
    assert record["git"]["commit"] == expected_commit
    assert record["git"]["dirty"] is (
        bool(record["git"]["changed"]) if head.returncode == 0 else None
    )
    assert record["cpu_model"] and record["cpu_cores"] >= 1
    assert record["gpu"] == (torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    assert record["versions"]["torch"] == torch.__version__
    assert set(record["versions"]) == {
        "torch",
        "transformers",
        "sentence-transformers",
        "faiss",
        "onnxruntime",
    }
    assert record["allocator"]["densekit_tuning"] is True
    assert record["allocator"]["mmap_threshold"] == allocator.MMAP_THRESHOLD
    assert record["allocator"]["environment"]["MALLOC_ARENA_MAX"] == "2"
    monkeypatch.setenv(allocator.ENVIRONMENT_SWITCH, "0")
    commands = common.environment()["allocator_of_densekit_commands"]
    assert commands["densekit_tuning"] is False


def test_a_missing_library_is_named_not_installed(common: ModuleType) -> None:
    assert common.library_version("no-such-distribution-here") == "not installed"
    assert common.library_version("no-such-distribution-here", "numpy") != "not installed"
