"""Encoding speed and memory, side by side with sentence-transformers in one run.

    .venv/bin/python benchmarks/encode.py [--docs 200] [--rounds 5] [--sizes 100000,1000000]

1. Throughput: the same SciFact documents, cut at the same token length, through
   `SentenceTransformer.encode` (its defaults) and through densekit's `densekit encode` path
   (reading, token-budget batching, shard commits; no cache) with each backend. Each side runs
   in a process of its own, twice: with the allocator as the C library leaves it (clean), and
   with densekit's glibc tuning applied the same way to both (tuned). Interleaved rounds;
   docs/s ratios under each setting, what the tuning gives each side, and the cosine of
   densekit's vectors to the reference vectors.
2. Quality: SciFact test nDCG@10 of a dense collection built with each backend.
3. Memory: `densekit encode --model static` over synthetic corpora of each size, each in its own
   process; peak RSS per size.

Writes benchmarks/results/encode.json; `runs.{part}` names the revision and date each part was
last measured at (`--parts` reruns some and keeps the others).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from _common import BUILD, QUICK, RESULTS, dataset, environment, write_json
from encode_anchors import ANCHORS
from encode_summary import ANCHOR, speed_quality_plot, speed_targets

import densekit
from densekit.encode import allocator
from densekit.encode.precision import using_precision

MEMORY_PROBE = """
import json, sys, time
from densekit.store import BuildOptions
from densekit.store.embeddings_dir import encode_corpus
options = BuildOptions(model="static", retriever="dense", cache_dir=None, progress=False)
started = time.perf_counter()
manifest = encode_corpus(sys.argv[1], sys.argv[2], options)
seconds = time.perf_counter() - started
# VmHWM, not ru_maxrss: the latter survives exec and would report the parent's size.
status = open("/proc/self/status").read().splitlines()
peak_kib = int(next(line for line in status if line.startswith("VmHWM")).split()[1])
print(json.dumps({"passages": manifest["passages"], "seconds": seconds, "peak_kib": peak_kib}))
"""


def scifact_subset(size: int, path: Path) -> list[str]:
    lines = (dataset("scifact") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:size]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [densekit.Document(**_fields(json.loads(line))).content for line in lines]


def _fields(record: dict) -> dict:
    return {"id": record["_id"], "text": record["text"], "title": record.get("title", "")}


ALLOCATOR = Path(densekit.__file__).parent / "encode" / "allocator.py"

# One side of the comparison in a process of its own. Both sides tune (or not) through the
# same code, loaded by path before anything else, so the anchor never imports densekit.
WORKER = """
import importlib.util, json, sys, time
side, tuned, max_tokens, allocator_file, texts_file, corpus, warm_up, warm_up_count, location = (
    sys.argv[1:10]
)
spec = importlib.util.spec_from_file_location("allocator", allocator_file)
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
if tuned == "1":
    allocator.tune_allocator()
import numpy as np
if side == "anchor":
    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer(location, device="cpu")
    model.max_seq_length = int(max_tokens)
    texts = json.loads(open(texts_file, encoding="utf-8").read())
    def encode(request, out):
        started = time.perf_counter()
        vectors = model.encode(texts[: int(warm_up_count) if request == "warm-up" else len(texts)])
        return time.perf_counter() - started, vectors
else:
    import densekit
    from densekit.files.encode_folder import load_embeddings
    from densekit.store.embeddings_dir import encode_corpus
    backend, _, precision = side.partition("@")  # "openvino@bf16": a compute precision
    encoder = densekit.load_encoder(
        "minilm", backend=backend, max_tokens=int(max_tokens), precision=precision or None
    )
    options = densekit.BuildOptions(retriever="dense", cache_dir=None, progress=False)
    def encode(request, out):
        started = time.perf_counter()
        encode_corpus(warm_up if request == "warm-up" else corpus, out, options, encoder=encoder)
        return time.perf_counter() - started, load_embeddings(out)[1]  # read back untimed
print(json.dumps(allocator.allocator_settings()), flush=True)
for line in sys.stdin:
    request, out = line.split()
    seconds, vectors = encode(request, out)
    np.save(out + ".npy", vectors)
    print(seconds, flush=True)
"""

WARM_UP_DOCS = 50
SETTINGS = {"clean": "0", "tuned": "1"}
# The engines CPU users pick for speed, each in the anchor environment (benchmarks/anchors.txt).
ANCHOR_PYTHON = BUILD.parent / "anchor-venv" / "bin" / "python"
ANCHOR_SCRIPT = Path(__file__).with_name("encode_anchors.py")


def exports(max_tokens: int) -> Path:
    """The anchors' exports of MiniLM cut at ``max_tokens``."""
    return BUILD / "anchor-exports" / f"minilm-{max_tokens}"


def anchor_command(name: str, setting: str, max_tokens: int, texts: Path) -> list[str]:
    """The process serving one anchor of encode_anchors.py over ``texts``."""
    return [
        str(ANCHOR_PYTHON),
        str(ANCHOR_SCRIPT),
        "serve",
        name,
        str(exports(max_tokens)),
        SETTINGS[setting],
        str(max_tokens),
        str(ALLOCATOR),
        str(texts),
        str(WARM_UP_DOCS),
    ]


def prepare_anchors(anchors: list[str], max_tokens: int, workdir: Path) -> None:
    """Each anchor's export of MiniLM, made once with its own tools; int8 OpenVINO is
    calibrated on SciFact documents past those the throughput part measures."""
    if not ANCHOR_PYTHON.exists():
        raise SystemExit(f"{ANCHOR_PYTHON} is missing: run `make anchors` first")
    calibration = workdir / "calibration.json"
    lines = (dataset("scifact") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    texts = [densekit.Document(**_fields(json.loads(line))).content for line in lines]
    calibration.write_text(json.dumps(texts[-300:]), encoding="utf-8")
    location = densekit.resolve_model("minilm").location
    folder = str(exports(max_tokens))
    command = [str(ANCHOR_PYTHON), str(ANCHOR_SCRIPT), "prepare", location, folder]
    subprocess.run([*command, str(max_tokens), str(calibration), ",".join(anchors)], check=True)


class Worker:
    """One encoder in a process of its own, under one allocator setting, serving timed runs."""

    def __init__(self, name: str, command: list[str], workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        # The same environment for every worker: nothing inherited decides the comparison.
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        env.pop(allocator.ENVIRONMENT_SWITCH, None)
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.allocator = json.loads(self._line())

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker stopped (exit {self.process.wait()})")
        return line

    def encode(self, request: str) -> tuple[float, np.ndarray]:
        """Seconds to encode the warm-up or the measured texts, and their vectors."""
        out = self.workdir / f"{self.name}-{request}"
        shutil.rmtree(out, ignore_errors=True)
        assert self.process.stdin is not None
        self.process.stdin.write(f"{request} {out}\n")
        self.process.stdin.flush()
        seconds = float(self._line())
        return seconds, np.load(f"{out}.npy")

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


def throughput(
    size: int, rounds: int, backends: list[str], anchors: list[str], max_tokens: int, workdir: Path
):
    """Every side (sentence-transformers, each densekit backend and each anchor engine) under
    both allocator settings, each in a fresh process; interleaved rounds over the same texts.

    Each worker first encodes a few documents untimed (lazy initialisation, first
    allocations). A round runs every worker once, in reverse order every other round, so drift
    in the shared machine's speed falls on both sides of each ratio; ratios are taken within
    each round and their median reported.
    """
    corpus = workdir / "scifact-subset.jsonl"
    texts = scifact_subset(size, corpus)
    texts_file = workdir / "texts.json"
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    warm_up = workdir / "warm-up.jsonl"
    scifact_subset(WARM_UP_DOCS, warm_up)
    inputs = [str(max_tokens), str(ALLOCATOR), str(texts_file), str(corpus), str(warm_up)]
    inputs += [str(WARM_UP_DOCS), densekit.resolve_model("minilm").location]
    sides = ["anchor", *backends, *anchors]
    workers: dict[tuple[str, str], Worker] = {}
    times: dict[tuple[str, str], list[float]] = {}
    load: list[float] = []
    vectors: dict[tuple[str, str], np.ndarray] = {}
    try:
        for setting in SETTINGS:
            for side in sides:
                command = (
                    anchor_command(side, setting, max_tokens, texts_file)
                    if side in anchors
                    else [sys.executable, "-c", WORKER, side, SETTINGS[setting], *inputs]
                )
                workers[side, setting] = Worker(f"{side}-{setting}", command, workdir)
        for worker in workers.values():
            worker.encode("warm-up")
        order = list(workers)
        for round_number in range(rounds):
            for key in order if round_number % 2 == 0 else order[::-1]:
                seconds, vectors[key] = workers[key].encode("measured")
                times.setdefault(key, []).append(seconds)
            load.append(round(os.getloadavg()[0], 2))  # other jobs on the machine, per round
            line = ", ".join(
                f"{side} {setting} {size / t[-1]:.1f}" for (side, setting), t in times.items()
            )
            print(f"round {round_number + 1} docs/s: {line}", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
    results: dict[str, Any] = {
        "documents": size,
        "rounds": rounds,
        "warm_up_documents": WARM_UP_DOCS,
        "model": "minilm",
        "max_tokens": max_tokens,
        "load_average_per_round": load,
    }
    for setting in SETTINGS:
        anchor = times["anchor", setting]
        rows = {}
        for side in [*backends, *anchors]:
            ratios = [a / b for a, b in zip(anchor, times[side, setting], strict=True)]
            rows[side] = {
                "docs_per_second": round(size / statistics.median(times[side, setting]), 2),
                "ratio_to_sentence_transformers": round(statistics.median(ratios), 3),
                "ratio_per_round": [round(ratio, 3) for ratio in ratios],
            }
        results[setting] = {
            "allocator": workers["anchor", setting].allocator,
            "sentence_transformers_docs_per_second": round(size / statistics.median(anchor), 2),
            "densekit": {side: rows[side] for side in backends},
            "anchors": {side: rows[side] for side in anchors},
        }
    results["tuning_speed_up"] = {
        ANCHOR if side == "anchor" else side: round(
            statistics.median(
                c / t for c, t in zip(times[side, "clean"], times[side, "tuned"], strict=True)
            ),
            3,
        )
        for side in sides
    }
    reference = vectors["anchor", "clean"]
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    results["cosine_to_reference"] = {}
    for side in [*backends, *anchors]:
        found = vectors[side, "clean"]
        cosine = (found * reference).sum(axis=1) / np.linalg.norm(found, axis=1)
        results["cosine_to_reference"][side] = {
            "min": round(float(cosine.min()), 6),
            "mean": round(float(cosine.mean()), 6),
        }
    return results


def scifact_quality(backends: list[str], workdir: Path) -> dict:
    """SciFact test nDCG@10 of a dense collection built with each backend."""
    results = {}
    for name in backends:
        backend, _, precision = name.partition("@")
        options = densekit.BuildOptions(
            retriever="dense", backend=backend, cache_dir=None, progress=False
        )
        # Documents and queries both in the precision named (the query encoder loads lazily).
        with using_precision(precision or None):
            collection = densekit.build_collection(
                dataset("scifact") / "corpus.jsonl", workdir / f"scifact-{name}", options
            )
            report = densekit.evaluate(
                dataset("scifact"), collection=collection, metrics=["nDCG@10"]
            )
        results[name] = round(report.metrics["nDCG@10"], 4)
        print(f"SciFact nDCG@10 with {name}: {results[name]}", flush=True)
    return results


def anchor_quality(anchors: list[str], max_tokens: int, workdir: Path) -> dict:
    """SciFact test nDCG@10 of exact search over each anchor's own document and query vectors
    (the same document texts as densekit's collections)."""
    from densekit.evaluate.beir import load_beir
    from densekit.evaluate.metrics import compute_metrics

    split = load_beir(dataset("scifact"))
    lines = (dataset("scifact") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    documents = [densekit.Document(**_fields(json.loads(line))) for line in lines]
    texts_file = workdir / "scifact-texts.json"
    texts = [document.content for document in documents] + list(split.queries.values())
    texts_file.write_text(json.dumps(texts), encoding="utf-8")
    results = {}
    for name in anchors:
        worker = Worker(name, anchor_command(name, "clean", max_tokens, texts_file), workdir)
        try:
            _, vectors = worker.encode("measured")
        finally:
            worker.close()
        vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        scores = vectors[len(documents) :] @ vectors[: len(documents)].T
        run = {}
        for query, row in zip(split.queries, scores, strict=True):
            top = np.argsort(-row)[:100]
            run[query] = {documents[i].id: float(row[i]) for i in top}
        report = compute_metrics(split.qrels, run, ["nDCG@10"])
        results[name] = round(report.aggregate["nDCG@10"], 4)
        print(f"SciFact nDCG@10 with {name}: {results[name]}", flush=True)
    return results


def synthetic_corpus(path: Path, size: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    stop_words = ["the", "a", "of", "and", "to", "in"]
    words = [f"w{rng.randrange(50_000)}" for _ in range(20_000)] + stop_words
    with path.open("w", encoding="utf-8") as handle:
        for i in range(size):
            text = " ".join(rng.choice(words) for _ in range(rng.randrange(20, 80)))
            handle.write(json.dumps({"_id": f"doc{i}", "text": text}) + "\n")


def memory(sizes: list[int], workdir: Path) -> dict:
    results = {}
    for size in sizes:
        corpus = workdir / f"synthetic-{size}.jsonl"
        synthetic_corpus(corpus, size)
        probe = subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, str(corpus), str(workdir / f"static-{size}")],
            capture_output=True,
            text=True,
            check=True,
        )
        measured = json.loads(probe.stdout.strip().splitlines()[-1])
        results[str(size)] = {
            "peak_rss_mib": round(measured["peak_kib"] / 1024, 1),
            "docs_per_second": round(size / measured["seconds"], 1),
        }
        print(
            f"{size:>9} docs: peak RSS {results[str(size)]['peak_rss_mib']} MiB, "
            f"{results[str(size)]['docs_per_second']} docs/s",
            flush=True,
        )
        corpus.unlink()
    peaks = [entry["peak_rss_mib"] for entry in results.values()]
    return {
        "model": "static",
        "sizes": results,
        "peak_rss_spread": round(max(peaks) / min(peaks) - 1, 3),
    }


PARTS = ("throughput", "quality", "memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=20 if QUICK else 200)
    parser.add_argument("--rounds", type=int, default=1 if QUICK else 5)
    parser.add_argument("--max-tokens", type=int, default=256, help="MiniLM's own limit")
    parser.add_argument("--sizes", default="2000,20000" if QUICK else "100000,1000000")
    # QUICK: one torch and one ONNX backend: every code path of the script.
    parser.add_argument(
        "--backends",
        default="sentence-transformers,onnx-int8"
        if QUICK
        else "sentence-transformers,torch-int8,onnx,onnx-int8,openvino,openvino-int8,openvino@bf16",
    )
    parser.add_argument(
        "--anchors",
        default="st-onnx-int8,fastembed" if QUICK else ",".join(ANCHORS),
        help="anchor engines (benchmarks/encode_anchors.py); empty for none",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="which measurements to (re)run; the others keep their last results",
    )
    args = parser.parse_args()
    backends = args.backends.split(",")
    anchors = [name for name in args.anchors.split(",") if name]
    if unknown := set(anchors) - set(ANCHORS):
        raise SystemExit(f"unknown anchors {sorted(unknown)}: choose from {', '.join(ANCHORS)}")
    parts = set(args.parts.split(","))
    previous = RESULTS / "encode.json"
    data = json.loads(previous.read_text()) if previous.exists() else {}
    runs = data.setdefault("runs", {})
    for part in PARTS:  # parts kept from an earlier run keep that run's record
        if part not in runs and "environment" in data:
            runs[part] = {key: data["environment"].get(key) for key in ("date", "git")}
    data["environment"] = environment()
    for part in parts:
        runs[part] = {key: data["environment"][key] for key in ("date", "git")}
    with tempfile.TemporaryDirectory(prefix="densekit-bench-") as scratch:
        workdir = Path(scratch)
        if anchors and parts & {"throughput", "quality"}:
            prepare_anchors(anchors, args.max_tokens, workdir)
        if "throughput" in parts:
            data["throughput"] = throughput(
                args.docs, args.rounds, backends, anchors, args.max_tokens, workdir
            )
        if "quality" in parts:
            data["scifact_ndcg_at_10"] = scifact_quality(backends, workdir)
            data["anchor_ndcg_at_10"] = anchor_quality(anchors, args.max_tokens, workdir)
        if "memory" in parts:
            data["memory"] = memory([int(s) for s in args.sizes.split(",")], workdir)
    data["targets"] = {
        setting: speed_targets(data, setting)
        for setting in SETTINGS
        if speed_targets(data, setting)
    }
    print(json.dumps(data, indent=2))
    print("wrote", write_json("encode", data), speed_quality_plot(data) or "")


if __name__ == "__main__":
    main()
