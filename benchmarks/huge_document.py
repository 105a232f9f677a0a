"""One huge document: time and peak memory of `densekit index` on a corpus of a single line.

A 50 MB line (a whole book dumped into one record) becomes one passage the model reads only the
first few hundred tokens of. Each build runs in its own process, measured by the kernel's
rusage (wall time and peak resident memory of the child). The anchor, in the same run and its
own process: the line's text read from the same file and encoded by
`SentenceTransformer.encode` with the same model (which tokenises the whole text before it
truncates). Runs are merged into results/huge_document.json by retriever, model and size.

    python benchmarks/huge_document.py [--mb 50] [--retriever dense] [--model minilm]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import QUICK, RESULTS, environment, write_json

VOCABULARY = (
    "the of and to in is that for it as was with be by on not he this are or his from at which "
    "but have an they you were her she there been one all we their has would when if so no will "
    "more what about up out who them some could into than then its only other new these two may "
    "retrieval dense vectors encoder passage query index collection corpus document token model"
)
WORDS = VOCABULARY.split()


def write_corpus(path: Path, megabytes: int, seed: int = 0) -> None:
    """One JSON line whose text holds ``megabytes`` MB of words, written in pieces."""
    rng = random.Random(seed)
    target = megabytes * 1_000_000
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"_id": "huge", "title": "One huge document", "text": "')
        written = 0
        while written < target:
            piece = " ".join(rng.choice(WORDS) for _ in range(20_000)) + ". "
            handle.write(piece)
            written += len(piece)
        handle.write('"}\n')


def measure(corpus: Path, out: Path, retriever: str, model: str) -> dict[str, float | int]:
    command = [
        sys.executable,
        "-m",
        "densekit.cli.main",
        "index",
        str(corpus),
        "--out",
        str(out),
        "--retriever",
        retriever,
        "--model",
        model,
        "--no-cache",
        "--quiet",
        "--overwrite",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"index failed ({done.returncode}): {done.stderr[-2000:]}")
    # ru_maxrss of the waited-for children, in KiB on Linux: the build is the only child.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024)}


# The anchor's process reports its own peak: RUSAGE_CHILDREN would also hold the build's.
ANCHOR = """
import json, resource, sys
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[2], device="cpu")
with open(sys.argv[1], encoding="utf-8") as handle:
    document = json.loads(handle.readline())
model.encode([document["title"] + " " + document["text"]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def measure_anchor(corpus: Path, model: str) -> dict[str, float | int]:
    """sentence-transformers reading and encoding the same line, in a process of its own."""
    import densekit

    location = densekit.resolve_model(model).location
    started = time.perf_counter()  # the whole process, as the build's: start, load, encode
    done = subprocess.run(
        [sys.executable, "-c", ANCHOR, str(corpus), location], capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"anchor failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kib = int(done.stdout.strip().splitlines()[-1])
    return {"seconds": round(seconds, 1), "peak_rss_mb": round(peak_kib / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=int, default=5 if QUICK else 50, help="size of the one line (MB)"
    )
    parser.add_argument("--retriever", default="dense", help="what `index` builds")
    parser.add_argument("--model", default="minilm")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="densekit-huge-"))
    try:
        corpus = work / "corpus.jsonl"
        write_corpus(corpus, args.mb)
        result = measure(corpus, work / "collection", args.retriever, args.model)
        if args.retriever == "dense":
            result["sentence_transformers"] = measure_anchor(corpus, args.model)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    row = {"line_mb": args.mb, "retriever": args.retriever, "model": args.model, **result}
    print(json.dumps(row, indent=2))
    row["environment"] = environment()  # each run its own: a run replaces only its row
    existing = RESULTS / "huge_document.json"
    report = json.loads(existing.read_text()) if existing.exists() else {"runs": {}}
    report.pop("environment", None)
    report.pop("before", None)  # a figure of an older revision, which no run reproduces
    report["runs"][f"{args.retriever}-{args.model}-{args.mb}mb"] = row
    write_json("huge_document", report)


if __name__ == "__main__":
    main()
