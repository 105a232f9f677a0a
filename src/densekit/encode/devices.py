"""Where models run: ``auto`` (a CUDA GPU, else Apple's MPS, else the CPU), ``cpu``,
``cuda`` / ``cuda:N`` or ``mps``, checked against what this machine has.

The process has one default (``densekit ... --device``, :func:`use_device`), which every model
loaded without its own device follows; the CPU stays the tested default wherever no GPU is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from densekit.errors import InputError

_default: str | None = None


def available_devices() -> list[str]:
    """The devices torch sees here: ``cpu``, each ``cuda:N``, ``mps``."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found += [f"cuda:{number}" for number in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    return found


def resolve_device(wanted: str | None = None) -> str:
    """The device ``wanted`` names (None: the process default, else ``auto``), refused with the
    list of this machine's devices when it is not here."""
    wanted = (wanted or _default or "auto").strip().lower()
    here = available_devices()
    if wanted == "auto":
        gpus = [device for device in here if device != "cpu"]
        return gpus[0] if gpus else "cpu"
    if wanted == "cuda":
        wanted = "cuda:0"
    if wanted in here:
        return wanted
    known = ("auto", "cpu", "mps", "cuda", "cuda:N")
    if wanted not in known and not (wanted.startswith("cuda:") and wanted[5:].isdigit()):
        raise InputError(f"unknown device {wanted!r}; give one of {', '.join(known)}")
    raise InputError(
        f"device {wanted!r} is not on this machine; it has {', '.join(here)} "
        "(--device auto picks the best of them)"
    )


def use_device(device: str | None) -> None:
    """Make ``device`` (checked) the default of every model this process loads from now on;
    None goes back to ``auto``."""
    global _default
    _default = None if device is None else resolve_device(device)


@contextmanager
def using_device(device: str | None) -> Iterator[None]:
    """:func:`use_device` for the time of the block (a command), then the default before it;
    None leaves the default as it is."""
    global _default
    before = _default
    if device is not None:
        use_device(device)
    try:
        yield
    finally:
        _default = before
