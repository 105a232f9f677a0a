"""Encoding speed and memory, side by side with sentence-transformers in one run.

    .venv/bin/python benchmarks/encode.py [--docs 2000] [--rounds 3] [--sizes 100000,1000000]

1. Throughput: the same SciFact documents through `SentenceTransformer.encode` (its defaults,
   in a process of its own) and through `densekit encode` (reading, token-budget batching,
   shard commits; no cache) with each backend, interleaved round by round; docs/s ratios and
   the cosine of densekit's vectors to the reference vectors.
2. Quality: SciFact test nDCG@10 of a dense collection built with each backend.
3. Memory: `densekit encode --model static` over synthetic corpora of each size, each in its own
   process; peak RSS per size.

Writes benchmarks/results/encode.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import RESULTS, dataset, environment, write_json

import densekit
from densekit.files.encode_folder import load_embeddings
from densekit.store.embeddings_dir import encode_corpus

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


ANCHOR_WORKER = """
import json, sys, time
import numpy as np
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
texts = json.loads(open(sys.argv[2], encoding="utf-8").read())
for line in sys.stdin:
    out, count = line.split()
    started = time.perf_counter()
    vectors = model.encode(texts[: int(count)])
    seconds = time.perf_counter() - started
    np.save(out, vectors)
    print(seconds, flush=True)
"""


class AnchorProcess:
    """`SentenceTransformer.encode` with its defaults, in a process densekit never touched: its
    allocator and thread settings are what a sentence-transformers user gets."""

    def __init__(self, location: str, texts: list[str], workdir: Path) -> None:
        texts_file = workdir / "anchor-texts.json"
        texts_file.write_text(json.dumps(texts), encoding="utf-8")
        self.workdir = workdir
        self.process = subprocess.Popen(
            [sys.executable, "-c", ANCHOR_WORKER, location, str(texts_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def encode(self, count: int) -> tuple[float, np.ndarray]:
        """Seconds to encode the first ``count`` texts, and their vectors."""
        out = self.workdir / "anchor-vectors.npy"
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{out} {count}\n")
        self.process.stdin.flush()
        seconds = float(self.process.stdout.readline())
        return seconds, np.load(out)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait()


WARM_UP_DOCS = 100


def throughput(size: int, rounds: int, backends: list[str], workdir: Path) -> dict:
    """Interleaved rounds: the anchor, then each densekit backend, on the same documents.

    Each side first encodes a few documents untimed (lazy initialisation, first allocations).
    Ratios are taken within each round, where both sides met the same machine load, and the
    median over rounds is reported.
    """
    corpus = workdir / "scifact-subset.jsonl"
    texts = scifact_subset(size, corpus)
    warm_up = workdir / "warm-up.jsonl"
    scifact_subset(WARM_UP_DOCS, warm_up)
    anchor_process = AnchorProcess(densekit.resolve_model("minilm").location, texts, workdir)
    options = densekit.BuildOptions(retriever="dense", cache_dir=None, progress=False)
    encoders = {name: densekit.load_encoder("minilm", backend=name) for name in backends}
    anchor_name = "sentence-transformers (anchor)"
    times: dict[str, list[float]] = {anchor_name: []}
    vectors: dict[str, np.ndarray] = {}
    try:
        anchor_process.encode(WARM_UP_DOCS)
        for name, encoder in encoders.items():
            encode_corpus(warm_up, workdir / f"warm-up-{name}", options, encoder=encoder)
        for round_number in range(rounds):
            seconds, reference = anchor_process.encode(size)
            times[anchor_name].append(seconds)
            for name, encoder in encoders.items():
                out = workdir / f"vectors-{name}-{round_number}"
                started = time.perf_counter()
                encode_corpus(corpus, out, options, encoder=encoder)
                times.setdefault(name, []).append(time.perf_counter() - started)
                vectors[name] = load_embeddings(out)[1]
            line = ", ".join(f"{name} {size / t[-1]:.1f}" for name, t in times.items())
            print(f"round {round_number + 1} docs/s: {line}", flush=True)
    finally:
        anchor_process.close()
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    anchor = size / statistics.median(times[anchor_name])
    results = {}
    for name in backends:
        rate = size / statistics.median(times[name])
        ratios = [a / b for a, b in zip(times[anchor_name], times[name], strict=True)]
        cosine = (vectors[name] * reference).sum(axis=1) / np.linalg.norm(vectors[name], axis=1)
        results[name] = {
            "docs_per_second": round(rate, 2),
            "ratio_to_sentence_transformers": round(statistics.median(ratios), 3),
            "ratio_per_round": [round(ratio, 3) for ratio in ratios],
            "min_cosine_to_reference": round(float(cosine.min()), 6),
            "mean_cosine_to_reference": round(float(cosine.mean()), 6),
        }
    return {
        "documents": size,
        "rounds": rounds,
        "model": "minilm",
        "sentence_transformers_docs_per_second": round(anchor, 2),
        "densekit": results,
    }


def scifact_quality(backends: list[str], workdir: Path) -> dict:
    """SciFact test nDCG@10 of a dense collection built with each backend."""
    results = {}
    for name in backends:
        options = densekit.BuildOptions(
            retriever="dense", backend=name, cache_dir=None, progress=False
        )
        collection = densekit.build_collection(
            dataset("scifact") / "corpus.jsonl", workdir / f"scifact-{name}", options
        )
        report = densekit.evaluate(dataset("scifact"), collection=collection, metrics=["nDCG@10"])
        results[name] = round(report.metrics["nDCG@10"], 4)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--backends", default="sentence-transformers,torch-int8,onnx,onnx-int8")
    parser.add_argument(
        "--parts",
        default="throughput,quality,memory",
        help="which measurements to (re)run; the others keep their last results",
    )
    args = parser.parse_args()
    backends = args.backends.split(",")
    parts = set(args.parts.split(","))
    previous = RESULTS / "encode.json"
    data = json.loads(previous.read_text()) if previous.exists() else {}
    data["environment"] = environment()
    with tempfile.TemporaryDirectory(prefix="densekit-bench-") as scratch:
        workdir = Path(scratch)
        if "throughput" in parts:
            data["throughput"] = throughput(args.docs, args.rounds, backends, workdir)
        if "quality" in parts:
            data["scifact_ndcg_at_10"] = scifact_quality(backends, workdir)
        if "memory" in parts:
            data["memory"] = memory([int(s) for s in args.sizes.split(",")], workdir)
    print(json.dumps(data, indent=2))
    print("wrote", write_json("encode", data))


if __name__ == "__main__":
    main()
