"""The glibc allocator tuning: applied once, and skipped when the user says so."""

from __future__ import annotations

import platform

import pytest

from densekit.encode import allocator


def test_tuning_is_idempotent() -> None:
    first = allocator.keep_freed_memory()
    assert allocator.keep_freed_memory() is first
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        assert first is True


def test_environment_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DENSEKIT_MALLOC_TUNING", "0")
    assert allocator._tune() is False
