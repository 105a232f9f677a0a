"""Crash consistency: SIGKILL `densekit index/add/update/delete/compact` at random moments and
check that the collection is always the old one or the new one, never a mix.

    .venv/bin/python benchmarks/crash_consistency.py [--trials-per-operation 14] [--seed 0]

A small collection of SciFact documents (the bundled static model, so a trial takes seconds)
with deleted documents, so that compaction has work. Each trial copies it, starts one CLI write
in a subprocess and kills it with SIGKILL:

- ``anytime``: after a delay drawn uniformly over the operation's whole run (measured once);
- ``writing``: once the write has created its new generation, after a delay drawn uniformly
  over what is left of the run (the moments where files are being written);
- ``published``: as soon as the manifest has been renamed into place (before the write has
  cleared what the new manifest no longer names);
- ``complete``: not killed (the operation's own run, which also gives the timings).

After each kill the collection must open, hold exactly the old or the new documents (ids; the
updated texts; the tombstones for compaction), answer every retriever with live documents only,
and pass `densekit check` (checksums and opening). Then the next write (a compaction) must leave
no leftovers and a collection that still checks clean. Anything else counts as a partial state.

Writes benchmarks/results/crash_consistency.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import QUICK, dataset, environment, write_json

from densekit.encode import load_encoder
from densekit.errors import CollectionError
from densekit.retrieve import Collection
from densekit.store import compact_collection
from densekit.store.integrity import verify_collection
from densekit.store.leftovers import find_leftovers
from densekit.store.manifest import read_manifest

# Documents: in the collection, added, deleted before the trials, updated and deleted by them
# (QUICK: the quick corpus holds 200).
SIZES = (150, 20, 8, 10, 10) if QUICK else (1500, 200, 80, 100, 100)
BASE, ADDED, DELETED_BEFORE, UPDATED, DELETED = SIZES
OPERATIONS = ("index", "add", "update", "delete", "compact")
MODES = {"complete": 1, "anytime": 5, "writing": 5, "published": 3}  # shares of the trials
QUERIES = ["cancer cell proliferation", "vitamin D deficiency", "protein folding", "HIV therapy"]


@dataclass(frozen=True)
class Workload:
    """The template collection's files and what each operation should turn it into."""

    template: Path
    corpus: Path  # what --overwrite rebuilds from
    added: Path
    updated: Path
    deleted: list[str]
    old_ids: frozenset[str]
    new_ids: dict[str, frozenset[str]]
    updated_texts: dict[str, tuple[str, str]]  # id -> (old text, new text)


@dataclass
class Trial:
    operation: str
    mode: str
    delay_s: float | None
    killed: bool
    state: str  # old, new or partial
    why: str
    leftovers_after_kill: int
    leftovers_after_next_write: int
    run_s: float  # how long the write ran (until killed or done)
    seconds: float  # the whole trial, checks included


def densekit(*arguments: object) -> list[str]:
    return [sys.executable, "-m", "densekit.cli.main", *(str(a) for a in arguments)]


def write_jsonl(path: Path, records: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def prepare(root: Path) -> Workload:
    lines = (dataset("scifact") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    documents = [json.loads(line) for line in lines[: BASE + ADDED]]
    base, extra = documents[:BASE], documents[BASE:]
    rng = np.random.default_rng(0)
    order = [base[i]["_id"] for i in rng.permutation(BASE)]
    deleted_before = order[:DELETED_BEFORE]
    updated_ids = set(order[DELETED_BEFORE : DELETED_BEFORE + UPDATED])
    deleted = order[DELETED_BEFORE + UPDATED : DELETED_BEFORE + UPDATED + DELETED]
    template = root / "template"
    source = write_jsonl(root / "base.jsonl", base)
    subprocess.run(
        densekit("index", source, "--out", template, "--model", "static", "--no-cache", "--quiet"),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    subprocess.run(
        densekit("delete", template, *deleted_before, "--quiet"),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    revised = [
        {**d, "text": d["text"] + " Revised after review."} for d in base if d["_id"] in updated_ids
    ]
    rebuilt = documents[ADDED:]  # a rebuild from another corpus: some documents go, some come
    old_ids = frozenset(d["_id"] for d in base) - set(deleted_before)
    return Workload(
        template=template,
        corpus=write_jsonl(root / "rebuild.jsonl", rebuilt),
        added=write_jsonl(root / "added.jsonl", extra),
        updated=write_jsonl(root / "updated.jsonl", revised),
        deleted=deleted,
        old_ids=old_ids,
        new_ids={
            "index": frozenset(d["_id"] for d in rebuilt),
            "add": old_ids | {d["_id"] for d in extra},
            "update": old_ids,
            "delete": old_ids - set(deleted),
            "compact": old_ids,
        },
        updated_texts={
            d["_id"]: (d["text"].removesuffix(" Revised after review."), d["text"]) for d in revised
        },
    )


def command(operation: str, collection: Path, work: Workload) -> list[str]:
    quiet = ["--quiet"]
    if operation == "index":
        return densekit(
            "index", work.corpus, "--out", collection, "--overwrite", "--model", "static",
            "--no-cache", *quiet,
        )  # fmt: skip
    if operation == "add":
        return densekit("add", collection, work.added, "--no-cache", *quiet)
    if operation == "update":
        return densekit("update", collection, work.updated, "--no-cache", *quiet)
    if operation == "delete":
        return densekit("delete", collection, *work.deleted, *quiet)
    return densekit("compact", collection, *quiet)


def run_and_kill(
    arguments: list[str], collection: Path, mode: str, delay: float | None
) -> tuple[bool, float]:
    """Run the write; kill it as ``mode`` says. Returns (killed, seconds it ran)."""
    manifest = collection / "manifest.json"
    published = manifest.stat().st_ino
    before = {p.name for p in collection.glob("gen-*")}
    started = time.perf_counter()
    process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    armed_at = started if mode == "anytime" else None
    while process.poll() is None:
        now = time.perf_counter()
        fresh = mode == "writing" and {p.name for p in collection.glob("gen-*")} - before
        if armed_at is None and fresh:
            armed_at = now
        if mode == "published" and manifest.stat().st_ino != published:
            armed_at, delay = now, 0.0
        if armed_at is not None and delay is not None and now - armed_at >= delay:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True, time.perf_counter() - started
        time.sleep(0.001)
    return False, time.perf_counter() - started


def classify(operation: str, collection: Path, work: Workload, encoder: Any) -> tuple[str, str]:
    """Which state the collection is in (old, new or partial), and why if partial."""
    try:
        opened = Collection(collection)
    except Exception as exc:  # any failure to open is what this looks for
        return "partial", f"does not open: {exc}"
    try:
        ids = set(opened.doc_ids)
        if len(ids) != len(opened) or len(opened.documents) != len(opened):
            return "partial", "document counts disagree"
        states = [s for s in ("old", "new") if ids == _ids(s, operation, work)]
        if operation == "update" and states:
            texts = {opened.documents.get(i).text for i in work.updated_texts}  # type: ignore[union-attr]
            states = [
                s
                for s, side in (("old", 0), ("new", 1))
                if texts == {pair[side] for pair in work.updated_texts.values()}
            ]
        if operation == "compact" and states:
            states = ["new" if opened.manifest.deleted == 0 else "old"]
        if len(states) != 1:
            return "partial", f"{len(ids)} documents: neither the old nor the new set"
        opened = opened.with_encoder(encoder)
        for retriever in opened.retrievers:
            for hits in opened.search_many(QUERIES, 10, retriever=retriever):
                if len(hits) != 10 or not {hit.id for hit in hits} <= ids:
                    return "partial", f"{retriever} search returned documents not in the state"
    finally:
        opened.close()
    report = verify_collection(collection, open_check=True)
    if not report.ok:
        return "partial", f"check: {[d.to_dict() for d in report.damaged]}"
    return states[0], ""


def _ids(state: str, operation: str, work: Workload) -> frozenset[str]:
    return work.old_ids if state == "old" else work.new_ids[operation]


def leftovers(collection: Path) -> int:
    """How many leftovers the collection holds (-1: its manifest cannot be read)."""
    try:
        return len(find_leftovers(collection, read_manifest(collection)))
    except CollectionError:
        return -1


def trial(
    operation: str,
    mode: str,
    delay: float | None,
    work: Workload,
    scratch: Path,
    encoder: Any,
) -> Trial:
    collection = scratch / "c"
    shutil.rmtree(collection, ignore_errors=True)
    shutil.copytree(work.template, collection, symlinks=True)
    started = time.perf_counter()
    killed, ran = run_and_kill(command(operation, collection, work), collection, mode, delay)
    state, why = classify(operation, collection, work, encoder)
    after_kill = leftovers(collection)
    after_next = -1
    if state != "partial":
        compact_collection(collection)  # the next write
        after_next = leftovers(collection)
        report = verify_collection(collection, open_check=True)
        if after_next or not report.ok:
            state, why = "partial", f"after the next write: {after_next} leftovers, ok={report.ok}"
    return Trial(
        operation,
        mode,
        None if delay is None else round(delay, 3),
        killed,
        state,
        why,
        after_kill,
        after_next,
        round(ran, 3),
        round(time.perf_counter() - started, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--trials-per-operation", type=int, default=len(MODES) if QUICK else sum(MODES.values())
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    encoder = load_encoder("static")
    trials: list[Trial] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="densekit-crash-") as temporary:
        root = Path(temporary)
        work = prepare(root)
        per_mode = _modes(args.trials_per_operation)
        for operation in OPERATIONS:
            run = trial(operation, "complete", None, work, root, encoder)
            trials.append(run)
            duration = run.run_s
            _progress(run)
            for mode, count in per_mode.items():
                for _ in range(count):
                    delay = _delay(mode, duration, rng)
                    trials.append(trial(operation, mode, delay, work, root, encoder))
                    _progress(trials[-1])
    results = _summary(trials, time.perf_counter() - started)
    path = write_json("crash_consistency", results)
    print(json.dumps(results["summary"], indent=2))
    print(f"wrote {path}")


def _modes(total: int) -> dict[str, int]:
    """``total`` trials per operation beyond the complete run, spread over the kill modes."""
    weights = {mode: share for mode, share in MODES.items() if mode != "complete"}
    left = total - MODES["complete"]
    counts = {mode: left * share // sum(weights.values()) for mode, share in weights.items()}
    counts["anytime"] += left - sum(counts.values())
    return counts


def _delay(mode: str, duration: float, rng: np.random.Generator) -> float | None:
    if mode == "published":
        return 0.0
    # Writing starts after the interpreter and the model load: the draw spans what is left.
    span = duration if mode == "anytime" else duration / 2
    return float(rng.uniform(0.0, span))


def _progress(run: Trial) -> None:
    killed = "killed" if run.killed else "finished"
    print(f"{run.operation:8} {run.mode:9} {killed:8} {run.state:7} {run.why}", flush=True)


def _summary(trials: list[Trial], seconds: float) -> dict[str, Any]:
    killed = [t for t in trials if t.killed]

    def by(key: str) -> dict[str, dict[str, int]]:
        """States counted per operation or per mode."""
        values = dict.fromkeys(getattr(t, key) for t in trials)
        return {v: dict(Counter(t.state for t in trials if getattr(t, key) == v)) for v in values}

    return {
        "benchmark": "crash_consistency",
        "environment": environment(),
        "setup": {
            "model": "static",
            "documents": BASE - DELETED_BEFORE,
            "tombstones": DELETED_BEFORE,
            "added": ADDED,
            "updated": UPDATED,
            "deleted": DELETED,
            "rebuild_documents": BASE,
        },
        "summary": {
            "trials": len(trials),
            "killed": len(killed),
            "finished_before_the_kill": len(trials) - len(killed),
            "partial_states": sum(t.state == "partial" for t in trials),
            "old_states": sum(t.state == "old" for t in trials),
            "new_states": sum(t.state == "new" for t in trials),
            "killed_with_leftovers": sum(t.leftovers_after_kill > 0 for t in killed),
            "leftovers_after_the_next_write": sum(t.leftovers_after_next_write for t in trials),
            "by_operation": by("operation"),
            "by_mode": by("mode"),
            "seconds": round(seconds, 1),
        },
        "trials": [asdict(t) for t in trials],
    }


if __name__ == "__main__":
    main()
