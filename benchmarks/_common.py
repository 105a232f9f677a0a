"""Shared pieces of the benchmark scripts: dataset paths, cached builds, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

import densekit

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "datasets"
BUILD = PROJECT / "build" / "benchmarks"
RESULTS = PROJECT / "benchmarks" / "results"


def dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        raise SystemExit(f"{path} is missing: the benchmarks read ../shared/datasets")
    return path


def build_or_open(
    name: str, *, model: str = "minilm", sparse: str | None = None, rebuild: bool = False
) -> densekit.Collection:
    """A hybrid collection of a shared dataset's corpus (with a ``sparse`` index if named),
    reused across runs unless ``rebuild``."""
    out = BUILD / (f"{name}-{model}" + (f"-{sparse}" if sparse else ""))
    if not rebuild and (out / "manifest.json").exists():
        return densekit.open_collection(out)
    # No embedding cache: the build's encoding time is part of what is measured.
    options = densekit.BuildOptions(model=model, retriever="hybrid", sparse=sparse, cache_dir=None)
    return densekit.build_collection(dataset(name) / "corpus.jsonl", out, options, overwrite=True)


def environment() -> dict[str, Any]:
    import torch

    return {
        "date": time.strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_threads": torch.get_num_threads(),
        "densekit": densekit.__version__,
    }


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    # Whole or not at all: a run killed mid-write leaves the previous results readable.
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(staging, path)
    return path


def paired_tests(a: dict[str, dict], b: dict[str, dict], measure: str, seed: int = 0) -> dict:
    """Paired t-test and two-sided randomisation test (sign flips, 10,000) of b − a."""
    from scipy.stats import ttest_rel

    queries = sorted(a)
    x = np.array([a[q][measure] for q in queries])
    y = np.array([b[q][measure] for q in queries])
    differences = y - x
    rng = np.random.default_rng(seed)
    flips = rng.choice([-1.0, 1.0], size=(10_000, len(differences)))
    observed = abs(differences.mean())
    randomised = float((np.abs((flips * differences).mean(axis=1)) >= observed).mean())
    return {
        "measure": measure,
        "queries": len(queries),
        "mean_difference": round(float(differences.mean()), 4),
        "better": int((differences > 0).sum()),
        "worse": int((differences < 0).sum()),
        "t_test_p": float(f"{ttest_rel(y, x).pvalue:.3g}"),
        "randomisation_p": randomised,
    }
