"""`densekit limits free-embedding`: the critical n of each dimension, written to a folder as
it is measured (every run of the search is kept, so an interrupted experiment resumes where it
stopped), with the cubic fit of the measured points beside the paper's, and a plot."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from densekit.errors import InputError
from densekit.evaluate.limits.critical_n import (
    PAPER_FIT,
    cubic_fit,
    find_critical_n,
    paper_critical_n,
)
from densekit.evaluate.limits.free_embedding import FitResult, FitSettings, check_run, fit
from densekit.files.durability import atomic_write_text

RESULTS_FILE = "free_embedding.json"
PLOT_FILE = "free_embedding.png"
FORMAT = "densekit-free-embedding"


def resolve_device(device: str) -> str:
    """``auto``: the GPU where torch sees one, else the CPU."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {device}: torch sees no GPU here; use --device cpu")
    return device


def available_memory(device: str) -> int:
    """Bytes a run may use on ``device``: free GPU memory, or the memory the system has free."""
    import torch

    if device.startswith("cuda"):
        return int(torch.cuda.mem_get_info(torch.device(device))[0])
    import psutil

    return int(psutil.virtual_memory().available)


def run_experiment(
    dims: Sequence[int],
    k: int,
    out: str | Path,
    settings: FitSettings | None = None,
    device: str = "auto",
    progress: bool = True,
) -> dict[str, Any]:
    """The critical n of every dimension in ``dims`` (see the module's description); the
    record written to ``out``/free_embedding.json, which a rerun with the same settings
    continues."""
    if not dims:
        raise InputError("--dims: give at least one dimension")
    settings = settings or FitSettings()
    for d in dims:
        check_run(k + 1, d, k)
    device = resolve_device(device)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    record = _load(folder, k, settings)
    for d in sorted(set(dims)):
        entry = record["dims"].setdefault(str(d), {"runs": {}})
        known = {int(n): FitResult(**run) for n, run in entry["runs"].items()}
        bar = tqdm(desc=f"d={d}", unit="step", disable=not progress, leave=True)

        def run(n: int, d: int = d, entry: dict = entry, bar: tqdm = bar) -> FitResult:
            check_run(n, d, k, available_memory(device))

            def show(step: int, loss: float, accuracy: float) -> None:
                bar.set_postfix(n=n, loss=f"{loss:.4f}", top_k=f"{accuracy:.4f}", refresh=False)
                bar.update(step - bar.n if step > bar.n else 0)

            bar.reset()
            result = fit(n, d, k, settings, device, progress=show)
            entry["runs"][str(n)] = dataclasses.asdict(result)
            _save(folder, record)
            return result

        critical = find_critical_n(run, start=_first_guess(d, k), known=known, smallest=k + 1)
        bar.close()
        entry.update(critical_n=critical, paper_fit=round(paper_critical_n(d), 1))
        _save(folder, record)
    measured = {int(d): e["critical_n"] for d, e in record["dims"].items() if e.get("critical_n")}
    record["fit"] = cubic_fit(measured)
    _save(folder, record)
    plot(record, folder / PLOT_FILE)
    return record


def _first_guess(d: int, k: int) -> int:
    # The paper's fit is for k = 2; the gallop corrects a poor guess for another k.
    return max(k + 1, round(paper_critical_n(d)))


def _load(folder: Path, k: int, settings: FitSettings) -> dict[str, Any]:
    path = folder / RESULTS_FILE
    wanted = {"k": k, "settings": dataclasses.asdict(settings)}
    if not path.exists():
        return {"format": FORMAT, **wanted, "paper_fit": list(PAPER_FIT), "dims": {}}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: unreadable ({error}); remove it or use another --out") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InputError(f"{path}: not a free-embedding record; use another --out")
    if {"k": record.get("k"), "settings": record.get("settings")} != wanted:
        raise InputError(
            f"{path}: measured with other settings (k {record.get('k')}, "
            f"{record.get('settings')}); use another --out to measure these"
        )
    return record


def _save(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_text(folder / RESULTS_FILE, json.dumps(record, indent=1) + os.linesep)


def plot(record: dict[str, Any], path: Path) -> bool:
    """Measured critical n by dimension, their cubic fit and the paper's; False without
    matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    import numpy as np

    measured = sorted(
        (int(d), e["critical_n"]) for d, e in record["dims"].items() if e.get("critical_n")
    )
    if not measured:
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5))
    dims = np.linspace(1, max(d for d, _ in measured) * 1.1, 200)
    axes.plot(dims, [paper_critical_n(d) for d in dims], "--", label="paper's cubic fit")
    if record.get("fit"):
        ours = np.polynomial.polynomial.polyval(dims, record["fit"])
        axes.plot(dims, ours, label="cubic fit of these points")
    axes.scatter(*zip(*measured, strict=True), color="black", zorder=3, label="measured")
    axes.set_xlabel("embedding dimension d")
    axes.set_ylabel(f"critical n (every top-{record['k']} set reproduced)")
    axes.set_title("Free embeddings: the most documents d dimensions can order")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
