"""Encoding speed and memory, side by side with sentence-transformers in one run.

    .venv/bin/python benchmarks/encode.py [--docs 2000] [--rounds 3] [--sizes 100000,1000000]

1. Throughput: the same SciFact documents through `SentenceTransformer.encode` (its defaults)
   and through `densekit encode` (reading, token-budget batching, shard commits; no cache),
   interleaved round by round; docs/s ratio and the cosine of densekit's vectors to the
   reference vectors.
2. Memory: `densekit encode --model static` over synthetic corpora of each size, each in its own
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
from _common import dataset, environment, write_json

import densekit
from densekit.store.embeddings_dir import encode_corpus, load_embeddings

MEMORY_PROBE = """
import json, resource, sys, time
from densekit.store import BuildOptions
from densekit.store.embeddings_dir import encode_corpus
options = BuildOptions(model="static", retriever="dense", cache_dir=None, progress=False)
started = time.perf_counter()
manifest = encode_corpus(sys.argv[1], sys.argv[2], options)
seconds = time.perf_counter() - started
peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"passages": manifest["passages"], "seconds": seconds, "peak_kib": peak_kib}))
"""


def scifact_subset(size: int, path: Path) -> list[str]:
    lines = (dataset("scifact") / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:size]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [densekit.Document(**_fields(json.loads(line))).content for line in lines]


def _fields(record: dict) -> dict:
    return {"id": record["_id"], "text": record["text"], "title": record.get("title", "")}


def throughput(size: int, rounds: int, workdir: Path) -> dict:
    from sentence_transformers import SentenceTransformer

    corpus = workdir / "scifact-subset.jsonl"
    texts = scifact_subset(size, corpus)
    reference_model = SentenceTransformer(densekit.resolve_model("minilm").location, device="cpu")
    options = densekit.BuildOptions(retriever="dense", cache_dir=None, progress=False)
    encoder = densekit.load_encoder("minilm")
    anchor_times, our_times = [], []
    reference = ours = None
    for round_number in range(rounds):
        started = time.perf_counter()
        reference = reference_model.encode(texts)
        anchor_times.append(time.perf_counter() - started)
        out = workdir / f"vectors-{round_number}"
        started = time.perf_counter()
        encode_corpus(corpus, out, options, encoder=encoder)
        our_times.append(time.perf_counter() - started)
        ours = load_embeddings(out)[1]
        print(
            f"round {round_number + 1}: sentence-transformers {size / anchor_times[-1]:.1f} "
            f"docs/s, densekit {size / our_times[-1]:.1f} docs/s",
            flush=True,
        )
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    cosine = (ours * reference).sum(axis=1) / np.linalg.norm(ours, axis=1)
    anchor = size / statistics.median(anchor_times)
    densekit_rate = size / statistics.median(our_times)
    return {
        "documents": size,
        "rounds": rounds,
        "model": "minilm",
        "sentence_transformers_docs_per_second": round(anchor, 2),
        "densekit_docs_per_second": round(densekit_rate, 2),
        "ratio": round(densekit_rate / anchor, 3),
        "min_cosine_to_reference": float(cosine.min()),
        "mean_cosine_to_reference": float(cosine.mean()),
    }


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
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="densekit-bench-") as scratch:
        workdir = Path(scratch)
        data = {
            "environment": environment(),
            "throughput": throughput(args.docs, args.rounds, workdir),
            "memory": memory([int(s) for s in args.sizes.split(",")], workdir),
        }
    print(json.dumps(data, indent=2))
    print("wrote", write_json("encode", data))


if __name__ == "__main__":
    main()
