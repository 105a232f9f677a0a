"""The glibc allocator tuning: never applied by the library on its own, applied by the command
line unless switched off, applied once when a program asks for it.

A recorder stands in for libc's ``mallopt`` wherever ctypes looks it up, so any code path that
would change the allocator shows up, whichever module it is in.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

import pytest

from densekit.cli.main import main
from densekit.encode import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
needs_glibc = pytest.mark.skipif(not GLIBC, reason="the tuning exists for glibc only")


class _RecordingMallopt:
    """Forwards to the real ``mallopt`` and keeps each call's (parameter, value)."""

    def __init__(self, real: object, calls: list[tuple[int, int]]) -> None:
        self.real = real
        self.calls = calls
        self.argtypes: object = None
        self.restype: object = None

    def __call__(self, parameter: int, value: int) -> int:
        self.calls.append((parameter, value))
        return int(self.real(ctypes.c_int(parameter), ctypes.c_int(value)))


@pytest.fixture
def mallopt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Calls of libc's ``mallopt`` from here on, in a process the tuning has not yet touched."""
    calls: list[tuple[int, int]] = []
    lookup = ctypes.CDLL.__getitem__

    def recording_lookup(library: ctypes.CDLL, name: str) -> object:
        function = lookup(library, name)
        return _RecordingMallopt(function, calls) if name == "mallopt" else function

    monkeypatch.setattr(ctypes.CDLL, "__getitem__", recording_lookup)
    monkeypatch.setattr(allocator, "_applied", None)
    monkeypatch.delenv(allocator.ENVIRONMENT_SWITCH, raising=False)
    return calls


TUNING = [
    (allocator._M_MMAP_THRESHOLD, allocator.MMAP_THRESHOLD),
    (allocator._M_TRIM_THRESHOLD, allocator.TRIM_THRESHOLD),
]


def _allocator_variables() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name.startswith("MALLOC_") or name in ("GLIBC_TUNABLES", "LD_PRELOAD")
    }


@pytest.mark.slow
def test_building_and_encoding_as_a_library_leaves_the_allocator_alone(
    mallopt_calls: list[tuple[int, int]], corpus_file: Path, tmp_path: Path
) -> None:
    import densekit

    variables = _allocator_variables()
    for backend in ("sentence-transformers", "torch-int8"):
        encoder = densekit.load_encoder("minilm", backend=backend)
        encoder.encode_queries(["vitamin D and bones"])
        densekit.build_collection(
            corpus_file,
            tmp_path / backend,
            densekit.BuildOptions(retriever="dense", cache_dir=None, progress=False),
            encoder=encoder,
        )
    assert mallopt_calls == []
    assert _allocator_variables() == variables
    assert allocator.allocator_settings()["densekit_tuning"] is False


@needs_glibc
@pytest.mark.slow
def test_the_command_line_tunes_the_allocator_before_encoding(
    mallopt_calls: list[tuple[int, int]], corpus_file: Path, tmp_path: Path, capsys
) -> None:
    args = ["encode", str(corpus_file), "--out", str(tmp_path / "vectors"), "--no-cache"]
    assert main([*args, "--quiet"]) == 0
    assert mallopt_calls == TUNING
    settings = allocator.allocator_settings()
    assert settings["densekit_tuning"] is True
    assert settings["mmap_threshold"] == allocator.MMAP_THRESHOLD


@pytest.mark.slow
def test_the_command_line_flag_turns_the_tuning_off(
    mallopt_calls: list[tuple[int, int]], corpus_file: Path, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "vectors"
    args = ["--no-allocator-tuning", "encode", str(corpus_file), "--out", str(out)]
    assert main([*args, "--no-cache", "--quiet"]) == 0
    assert mallopt_calls == []
    assert allocator.allocator_settings()["densekit_tuning"] is False


def test_the_settings_of_a_command_are_known_before_it_starts(
    mallopt_calls: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert allocator.allocator_settings(command=True)["densekit_tuning"] is GLIBC
    assert allocator.allocator_settings()["densekit_tuning"] is False  # this process: untouched
    monkeypatch.setenv(allocator.ENVIRONMENT_SWITCH, "0")
    assert allocator.allocator_settings(command=True)["densekit_tuning"] is False
    assert mallopt_calls == []


def test_the_environment_switch_turns_the_tuning_off(
    mallopt_calls: list[tuple[int, int]], monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(allocator.ENVIRONMENT_SWITCH, "0")
    assert main(["models"]) == 0
    assert mallopt_calls == []
    settings = allocator.allocator_settings()
    assert settings["densekit_tuning"] is False
    assert settings["environment"][allocator.ENVIRONMENT_SWITCH] == "0"


@needs_glibc
def test_a_program_opts_in_once(mallopt_calls: list[tuple[int, int]]) -> None:
    assert allocator.tune_allocator() is True
    assert allocator.tune_allocator() is True
    assert mallopt_calls == TUNING  # once per process: the second call changes nothing
