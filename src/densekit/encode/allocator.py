"""Keep freed activation buffers in the process heap (glibc only), when asked to.

A transformer forward pass on CPU allocates and frees tensors of tens of MiB per layer. glibc
serves blocks that large with ``mmap`` and hands them back to the kernel on ``free``, so every
layer pays page faults on fresh memory again (the reason CPU inference guides preload jemalloc
or tcmalloc); how much of the encoding time that is depends on the machine. Raising the mmap
and trim thresholds keeps those blocks in the heap for reuse; the heap grows to the batch's
working set and no further.

The allocator belongs to the process, not to a library: importing densekit and encoding never
changes it. The ``densekit`` command tunes it at start (``--no-allocator-tuning`` or
``DENSEKIT_MALLOC_TUNING=0`` leaves it alone); a Python program opts in with
``tune_allocator()``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from typing import Any

# mallopt(3) parameters.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# The largest mmap threshold glibc accepts on 64-bit systems (HEAP_MAX / 2).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024
# The switch the command line reads; "0" turns the tuning off.
ENVIRONMENT_SWITCH = "DENSEKIT_MALLOC_TUNING"
# Variables through which a process's allocator is set from outside it.
_ALLOCATOR_VARIABLES = ("GLIBC_TUNABLES", "LD_PRELOAD", ENVIRONMENT_SWITCH)

_applied: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds for this whole process (once).

    True when the tuning is in effect; False where the C library is not glibc. The change
    cannot be undone for the life of the process.
    """
    global _applied
    if _applied is None:
        _applied = _tune()
    return _applied


def tune_for_command(*, disabled: bool) -> bool:
    """The command line's default: tune, unless ``disabled`` or the environment switch is 0."""
    if disabled or os.environ.get(ENVIRONMENT_SWITCH, "1") == "0":
        return False
    return tune_allocator()


def allocator_settings(*, command: bool = False) -> dict[str, Any]:
    """The allocator settings in force in this process, as far as they can be known: densekit's
    tuning (glibc offers no way to read mallopt values back) and the variables that set an
    allocator from outside (``MALLOC_*``, ``GLIBC_TUNABLES``, ``LD_PRELOAD``) or switch it off.

    With ``command``, those of a ``densekit`` command started from this process's environment
    (without ``--no-allocator-tuning``).
    """
    if command:
        tuned = os.environ.get(ENVIRONMENT_SWITCH, "1") != "0" and _glibc()
    else:
        tuned = bool(_applied)
    settings: dict[str, Any] = {
        "libc": " ".join(platform.libc_ver()).strip() or "unknown",
        "densekit_tuning": tuned,
        "mmap_threshold": MMAP_THRESHOLD if tuned else "libc default",
        "trim_threshold": TRIM_THRESHOLD if tuned else "libc default",
    }
    variables = {
        name: value
        for name, value in sorted(os.environ.items())
        if name.startswith("MALLOC_") or name in _ALLOCATOR_VARIABLES
    }
    settings["environment"] = variables
    return settings


def _glibc() -> bool:
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def _tune() -> bool:
    if not _glibc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
