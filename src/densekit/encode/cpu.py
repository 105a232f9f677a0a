"""What the CPU offers the int8 backends."""

from __future__ import annotations

from functools import cache
from pathlib import Path

_VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@cache
def has_vnni() -> bool:
    """True on x86 CPUs with int8 dot-product instructions (VNNI or AMX).

    Without them int8 multiply-adds go through 16-bit intermediates that saturate on
    full-range operands, so the int8 backends give up one bit of range there.
    """
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    return any(flag in flags for flag in _VNNI_FLAGS)
