"""A collection built by an earlier densekit searches identically with this one.

An earlier revision (``--base``, checked out into a temporary git worktree) builds the SciFact
collection and evaluates it with each retriever, writing TREC runs; this checkout evaluates the
same directory. Each pair of runs must be identical to the byte, and the metrics equal.

    .venv/bin/python benchmarks/compatibility.py [--base REV]   → results/compatibility.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import BUILD, PROJECT, QUICK, dataset, environment, write_json

# The last revision before retrieval became pipelines and the store stopped searching.
DEFAULT_BASE = "aca4ea4"
SETTINGS = {
    "dense": ["--retriever", "dense"],
    "bm25": ["--retriever", "bm25"],
    "hybrid": ["--retriever", "hybrid"],
    "hybrid-rrf": ["--retriever", "hybrid", "--fusion", "rrf"],
    "hybrid-alpha-0.7": ["--retriever", "hybrid", "--alpha", "0.7"],
}


def densekit(source: Path, *args: str) -> str:
    """Run the CLI of the densekit whose package is under ``source``."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    command = [sys.executable, "-m", "densekit.cli.main", *args]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout


def evaluate(source: Path, collection: Path, setting: str, run: Path) -> dict[str, float]:
    output = densekit(
        source,
        "eval",
        str(dataset("scifact")),
        "--collection",
        str(collection),
        *SETTINGS[setting],
        "--run-out",
        str(run),
        "--json",
    )
    return json.loads(output)["metrics"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE, help="the earlier revision")
    args = parser.parse_args()
    base = subprocess.run(
        ["git", "rev-parse", args.base], cwd=PROJECT, check=True, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="densekit-compat-") as scratch:
        worktree = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), base],
            cwd=PROJECT,
            check=True,
            capture_output=True,
        )
        try:
            old, new = worktree / "src", PROJECT / "src"
            collection = BUILD / f"scifact-built-by-{base[:7]}"
            print(f"building SciFact with {base[:7]} ...", flush=True)
            densekit(
                old,
                "index",
                str(dataset("scifact") / "corpus.jsonl"),
                "--out",
                str(collection),
                "--overwrite",
            )
            rows = {}
            # QUICK: one setting per retriever, each a process of either version.
            for setting in ("dense", "bm25", "hybrid") if QUICK else SETTINGS:
                runs = {side: Path(scratch) / f"{side}-{setting}.run" for side in ("old", "new")}
                before = evaluate(old, collection, setting, runs["old"])
                after = evaluate(new, collection, setting, runs["new"])
                identical = runs["old"].read_bytes() == runs["new"].read_bytes()
                rows[setting] = {
                    "nDCG@10 before": round(before["nDCG@10"], 4),
                    "nDCG@10 now": round(after["nDCG@10"], 4),
                    "metrics equal": before == after,
                    "runs identical": identical,
                }
                print(setting, rows[setting], flush=True)
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)], cwd=PROJECT, check=False
            )
    now = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=PROJECT, capture_output=True, text=True
    ).stdout.strip()
    write_json(
        "compatibility",
        {
            "environment": environment(),
            "base": base,
            "now": now,
            "dataset": "scifact test",
            "rows": rows,
        },
    )
    if not all(row["runs identical"] and row["metrics equal"] for row in rows.values()):
        raise SystemExit("a run differs from the earlier version's")


if __name__ == "__main__":
    main()
