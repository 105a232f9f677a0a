"""Shared pieces of the benchmark scripts: dataset paths, cached builds, JSON output."""

from __future__ import annotations

import itertools
import json
import os
import platform
import shutil
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

import densekit
from densekit.evaluate.significance import paired_tests

PROJECT = Path(__file__).resolve().parents[1]
SHARED = PROJECT.parent / "shared" / "datasets"
# QUICK=1 (`make benchmarks QUICK=1`): every script on small copies of the datasets, with its
# builds and results kept apart: a check that the scripts still run, not results.
QUICK = os.environ.get("QUICK") == "1"
QUICK_QUERIES = 30  # judged queries kept per split
QUICK_DOCUMENTS = 200  # documents kept: the judged ones, then the first others
QUICK_WORDS = 48  # words kept of each document's text: encoding is most of every script's time
QUICK_PAIRS = 300  # rows kept of each split of a sentence-pair set (STS-B)
BUILD = PROJECT / "build" / ("benchmarks-quick" if QUICK else "benchmarks")
RESULTS = PROJECT / "benchmarks" / "results" / ("quick" if QUICK else "")


def dataset(name: str) -> Path:
    path = SHARED / name
    if not path.is_dir():
        raise SystemExit(f"{path} is missing: the benchmarks read ../shared/datasets")
    if not QUICK:
        return path
    return quick_copy(path) if (path / "qrels").is_dir() else quick_pairs(path)


def quick_pairs(source: Path) -> Path:
    """The first QUICK_PAIRS rows of each of ``source``'s split files (TSV with a header)."""
    out = BUILD / "datasets" / source.name
    if out.is_dir():
        return out
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for split in source.glob("*.tsv"):
        with split.open(encoding="utf-8") as rows:
            kept = list(itertools.islice(rows, QUICK_PAIRS + 1))  # the header too
        (staging / split.name).write_text("".join(kept), encoding="utf-8")
    os.replace(staging, out)
    return out


def quick_copy(source: Path) -> Path:
    """A small BEIR dataset cut from ``source``: per split its first judged queries, their
    judged documents and the first others up to QUICK_DOCUMENTS, each document's text cut to
    its first QUICK_WORDS words; made once under BUILD."""
    out = BUILD / "datasets" / source.name
    if (out / "corpus.jsonl").exists():
        return out
    staging = out.with_name(out.name + ".tmp")
    (staging / "qrels").mkdir(parents=True, exist_ok=True)
    kept_queries: set[str] = set()
    judged: set[str] = set()
    for qrels in sorted((source / "qrels").glob("*.tsv")):
        lines = qrels.read_text(encoding="utf-8").splitlines()
        header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
        queries = list(dict.fromkeys(row[0] for row in rows))[:QUICK_QUERIES]
        keep = set(queries)
        rows = [row for row in rows if row[0] in keep]
        kept_queries |= keep
        judged |= {row[1] for row in rows}
        body = "".join("\t".join(row) + "\n" for row in rows)
        (staging / "qrels" / qrels.name).write_text(header + "\n" + body, encoding="utf-8")
    queries_text = (source / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    kept = [line for line in queries_text if json.loads(line)["_id"] in kept_queries]
    (staging / "queries.jsonl").write_text("\n".join(kept) + "\n", encoding="utf-8")
    documents, others = [], QUICK_DOCUMENTS - len(judged)
    with (source / "corpus.jsonl").open(encoding="utf-8") as corpus:
        for line in corpus:
            document = json.loads(line)
            if document["_id"] not in judged:
                if others <= 0:
                    continue
                others -= 1
            words = str(document.get("text", "")).split()
            document["text"] = " ".join(words[:QUICK_WORDS])
            documents.append(json.dumps(document, ensure_ascii=False) + "\n")
    (staging / "corpus.jsonl").write_text("".join(documents), encoding="utf-8")
    os.replace(staging, out)
    return out


def build_or_open(
    name: str,
    *,
    model: str = "minilm",
    sparse: str | None = None,
    rebuild: bool = False,
    classic_bm25: bool = False,
) -> densekit.Collection:
    """A hybrid collection of a shared dataset's corpus (with a ``sparse`` index if named),
    reused across runs unless ``rebuild``. ``classic_bm25``: its BM25 without the hybrid's
    exact word forms and word pairs, as hybrid collections were built before them (for the
    measurements made on those)."""
    suffix = (f"-{sparse}" if sparse else "") + ("-classic-bm25" if classic_bm25 else "")
    out = BUILD / f"{name}-{model}{suffix}"
    classic = {"bm25_exact_weight": 0.0, "bm25_pair_weight": 0.0} if classic_bm25 else {}
    # No embedding cache: the build's encoding time is part of what is measured.
    options = densekit.BuildOptions(
        model=model, retriever="hybrid", sparse=sparse, cache_dir=None, **classic
    )
    return build_once(dataset(name) / "corpus.jsonl", out, options, rebuild=rebuild)


def build_once(
    corpus: Path, out: Path, options: densekit.BuildOptions, *, rebuild: bool = False
) -> densekit.Collection:
    """The collection of ``corpus`` at ``out``: the one kept there if it was built as
    ``options`` build one now (:func:`built_as`) and not ``rebuild``, else a new build."""
    kept = None if rebuild else built_as(out, options)
    if kept is not None:
        return kept
    return densekit.build_collection(corpus, out, options, overwrite=True)


def built_as(out: Path, options: densekit.BuildOptions) -> densekit.Collection | None:
    """The collection kept at ``out`` if it was built as ``options`` build one now: one built
    under an earlier default (BM25's stemmer or terms) would give another build's numbers."""
    if not (out / "manifest.json").exists():
        return None
    collection = densekit.open_collection(out)
    lexical, terms = collection.manifest.lexical, options.lexical_terms()
    if lexical is not None and (lexical.stemmer, lexical.terms) != (options.bm25_stemmer, terms):
        collection.close()
        return None
    return collection


# The libraries whose versions a measurement depends on; each is one of the distributions named.
LIBRARIES = {
    "torch": ("torch",),
    "transformers": ("transformers",),
    "sentence-transformers": ("sentence-transformers",),
    "faiss": ("faiss-cpu", "faiss-gpu", "faiss"),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
}


def environment() -> dict[str, Any]:
    """Where and with what a measurement ran: the revision, the machine, the libraries, and the
    allocator settings of the measuring process (call it from that process) and of the
    `densekit` commands it starts."""
    import torch

    from densekit.encode.allocator import allocator_settings

    return {
        "date": time.strftime("%Y-%m-%d"),
        "git": git_revision(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "densekit": densekit.__version__,
        "versions": {name: library_version(*names) for name, names in LIBRARIES.items()},
        "allocator": allocator_settings(),
        # Numbers measured in `densekit` subprocesses (servers, builds) run under these.
        "allocator_of_densekit_commands": allocator_settings(command=True),
    }


def git_revision() -> dict[str, Any]:
    """The commit measured, and the tracked files that differed from it (if any)."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT, capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = git("diff", "--name-only", "HEAD").splitlines()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": None, "changed": []}
    return {"commit": commit, "dirty": bool(changed), "changed": changed}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def library_version(*distributions: str) -> str:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    # Whole or not at all: a run killed mid-write leaves the previous results readable.
    staging = path.with_suffix(".json.tmp")
    staging.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(staging, path)
    return path


def paired_tests_with_unseen(
    a: dict[str, dict], b: dict[str, dict], measure: str, name: str = "scifact"
) -> dict:
    """:func:`paired_tests` of b − a on all of a dataset's test queries and on the unseen ones
    alone (no relevant document judged for a train query), where what was trained on train
    cannot have learned which documents get cited."""
    from densekit.evaluate.beir import load_beir
    from densekit.evaluate.splits import seen_breakdown

    train, test = load_beir(dataset(name), "train"), load_beir(dataset(name), "test")
    unseen = set(seen_breakdown(train.qrels, test.qrels, train.queries | test.queries).none)
    return {
        "all": paired_tests(a, b, measure),
        "unseen": paired_tests(
            {q: s for q, s in a.items() if q in unseen},
            {q: s for q, s in b.items() if q in unseen},
            measure,
        ),
    }


def seen_unseen(per_query: dict[str, dict[str, float]], name: str = "scifact") -> dict:
    """Scores of a dataset's official test queries (``per_query``, as `densekit.evaluate`
    reports them) averaged apart by whether their relevant documents were all ("seen"), some
    or none ("unseen") judged relevant to a train query: what is trained on train can gain on
    the seen ones by learning which documents get cited."""
    from densekit.evaluate.beir import load_beir
    from densekit.evaluate.splits import seen_breakdown

    train, test = load_beir(dataset(name), "train"), load_beir(dataset(name), "test")
    breakdown = seen_breakdown(train.qrels, test.qrels, train.queries | test.queries)
    groups = {"seen": breakdown.all, "some": breakdown.some, "unseen": breakdown.none}
    result = {}
    for group, ids in groups.items():
        scored = [per_query[q] for q in ids if q in per_query]
        result[group] = {"queries": len(scored)}
        for measure in scored[0] if scored else ():
            result[group][measure] = round(float(np.mean([s[measure] for s in scored])), 4)
    return result
