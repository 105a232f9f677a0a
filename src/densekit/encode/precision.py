"""The floating-point precision models run in: ``fp32`` (the default, and the tested one),
``fp16`` or ``bf16`` (half the memory, and on a GPU often twice the speed), ``auto`` (fp16 on
a CUDA GPU, fp32 elsewhere).

As with devices, the process has one default (``densekit ... --precision``,
:func:`use_precision`). Precision is how a model runs, not which model it is: a collection
encoded in fp16 on a GPU is searched with fp32 queries on a CPU, and its model fingerprint is
the same (taken from the fp32 weights).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from densekit.errors import InputError

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "fp16", "bf16", "auto")
_default: str | None = None


def resolve_precision(wanted: str | None, device: str) -> str:
    """``fp32``, ``fp16`` or ``bf16`` for a model on ``device``; fp16 is refused on a CPU."""
    wanted = (wanted or _default or "fp32").strip().lower()
    if wanted not in PRECISIONS:
        raise InputError(f"unknown precision {wanted!r}; give one of {', '.join(PRECISIONS)}")
    if wanted == "auto":
        return "fp16" if device.startswith("cuda") else "fp32"
    if wanted == "fp16" and device == "cpu":
        raise InputError("fp16 runs models on a GPU; on the CPU use bf16 (half the memory) or fp32")
    return wanted


def torch_dtype(precision: str) -> torch.dtype:
    import torch

    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def default_precision() -> str | None:
    """The process default :func:`use_precision` set (None: fp32), to hand to workers."""
    return _default


def use_precision(precision: str | None) -> None:
    """Make ``precision`` the default of every model this process loads from now on (checked
    against each model's device when it loads); None goes back to fp32."""
    global _default
    if precision is not None and precision.strip().lower() not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; give one of {', '.join(PRECISIONS)}")
    _default = precision


@contextmanager
def using_precision(precision: str | None) -> Iterator[None]:
    """:func:`use_precision` for the time of the block (a command); None leaves it as it is."""
    global _default
    before = _default
    if precision is not None:
        use_precision(precision)
    try:
        yield
    finally:
        _default = before
