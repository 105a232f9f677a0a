"""Binary Paragraph Vectors on SciFact: binary codes learned from the corpus's text alone,
against BM25 and against the sign bits of MiniLM.

    .venv/bin/python benchmarks/binary_pv.py [--bits 64,128,256] [--fresh]

- bpv N: a Binary PV model of N bits trained on SciFact's corpus (`densekit train-bpv`: no
  queries, no judgements and no pretrained model, so SciFact's official test has nothing to
  leak), searched by Hamming distance (`--model bpv:DIR --index binary`); queries' codes are
  inferred.
- real-binary: the real-valued + binary variant (REAL_DIM-d real vectors, 128 bits): its codes
  alone, its real vectors alone (flat), and its codes' Hamming top k x M rescored by its real
  vectors (M = 2, 4, 10: the paper's filter-then-rank).
- Anchors, in the same run: BM25 (the SciFact hybrid collection's), MiniLM's float vectors, and
  MiniLM's sign bits of its first N dimensions (`dimN:binary`, all 384 as `binary`).

Per row: nDCG@10 and R@100 on the 300 official test queries, the index's bytes per document,
and the median milliseconds per single query, encoding included (a Binary PV query is inferred
by gradient steps; MiniLM's runs a transformer). Paired tests (t-test and randomisation) of
each Binary PV row against BM25 and against MiniLM's sign bits of as many bits.

Models and collections are kept in build/benchmarks/bpv; results are saved as they are measured
and a rerun measures only what is missing (``--fresh``: all again, models retrained). Writes
benchmarks/results/binary_pv.json and binary_pv.png (nDCG@10 against bytes per document).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_once,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    write_json,
)

import densekit
from densekit.corpus import CorpusReader
from densekit.store.reindexing import reindex_collection
from densekit.train.binary_pv import BinaryPVTraining, train_binary_pv

BITS = "64,128" if QUICK else "64,128,256"
REAL_DIM = 256
REAL_BITS = 128
TRAINING = BinaryPVTraining(epochs=5) if QUICK else BinaryPVTraining()
DEPTHS = (2, 4, 10)
MEASURES = ["nDCG@10", "R@100"]
WORK = BUILD / "bpv"
LATENCY_QUERIES = 20 if QUICK else 100
DATA: dict[str, Any] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", default=BITS)
    parser.add_argument("--fresh", action="store_true", help="train and measure everything again")
    args = parser.parse_args()
    previous = RESULTS / "binary_pv.json"
    if args.fresh:
        shutil.rmtree(WORK, ignore_errors=True)
    elif previous.exists():
        DATA.update(json.loads(previous.read_text()))
    if DATA.get("training") != _training_record():
        DATA.clear()
        shutil.rmtree(WORK, ignore_errors=True)
    DATA["training"] = _training_record()
    test = densekit.load_beir(dataset("scifact"), "test")
    rows: dict[str, Any] = DATA.setdefault("rows", {})
    minilm = build_or_open("scifact")
    if "bm25" not in rows:
        rows["bm25"] = evaluated(
            densekit.evaluate(test, collection=minilm, retriever="bm25", metrics=MEASURES)
        )
    if "minilm float" not in rows:
        rows["minilm float"] = measured(minilm, test)
    minilm.close()
    sizes = [int(b) for b in args.bits.split(",")]
    for bits in sorted({*sizes, 384}):  # all 384 sign bits: the binary index of before
        if f"minilm sign {bits}" not in rows:
            rows[f"minilm sign {bits}"] = measured_sign(minilm.directory, bits, test)
            save()
    for bits in sizes:
        if f"bpv {bits}" not in rows:
            model = trained(f"bits{bits}", BinaryPVTraining(**{**TRAINING.__dict__, "bits": bits}))
            with collection_of(model, "binary") as codes:
                rows[f"bpv {bits}"] = measured(codes, test) | {"model": _report(model)}
            save()
    if "real-binary codes" not in rows:
        real_binary()
    compare()
    save()
    plot(RESULTS / "binary_pv.png")


def _training_record() -> dict[str, Any]:
    return {k: v for k, v in TRAINING.__dict__.items() if k != "bits"} | {
        "real_dim": REAL_DIM,
        "real_bits": REAL_BITS,
    }


def trained(name: str, settings: BinaryPVTraining) -> Path:
    out = WORK / "models" / name
    if not (out / "config.json").exists():
        corpus = CorpusReader(dataset("scifact") / "corpus.jsonl")
        result = train_binary_pv(corpus, out, settings, overwrite=True)
        print(*result.summary(), sep="\n", flush=True)
    return out


def _report(model: Path) -> dict[str, Any]:
    result = json.loads((model / "config.json").read_text())["training"]["result"]
    return {k: result[k] for k in ("vocabulary", "steps", "seconds", "last_loss")}


def collection_of(model: Path, index: str, output: str = "codes") -> densekit.Collection:
    name = f"bpv:{model}" + ("" if output == "codes" else f"#output={output}")
    options = densekit.BuildOptions(model=name, index=index, retriever="dense", cache_dir=None)
    out = WORK / "collections" / f"{model.name}-{output}"
    return build_once(dataset("scifact") / "corpus.jsonl", out, options)


def measured_sign(source: Path, bits: int, test: Any) -> dict[str, Any]:
    folder = WORK / "collections" / f"minilm-sign-{bits}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    reindex_collection(folder, "binary" if bits == 384 else f"dim{bits}:binary")
    with densekit.open_collection(folder) as collection:
        return measured(collection, test)


def measured(collection: densekit.Collection, test: Any) -> dict[str, Any]:
    """Dense search's quality, index bytes per document, and single-query latency."""
    report = densekit.evaluate(test, collection=collection, retriever="dense", metrics=MEASURES)
    codes = getattr(collection.stored.dense_index, "codes", None)
    dimension = collection.stored.encoder.dimension
    # A flat index searches float32 vectors.
    per_document = codes.resident_bytes / len(collection) if codes else 4 * dimension
    return evaluated(report) | {
        "bytes_per_document": round(per_document, 1),
        "median_ms": single_query_ms(collection, list(test.queries.values())),
    }


def evaluated(report: Any) -> dict[str, Any]:
    metrics = {name: round(value, 4) for name, value in report.metrics.items()}
    print(metrics, flush=True)
    return {"metrics": metrics, "per_query": report.per_query}


def single_query_ms(collection: densekit.Collection, queries: list[str]) -> float:
    collection.search(queries[0], k=10, retriever="dense")
    seconds = []
    for query in queries[:LATENCY_QUERIES]:
        started = time.perf_counter()
        collection.search(query, k=10, retriever="dense")
        seconds.append(time.perf_counter() - started)
    return round(1000 * statistics.median(seconds), 2)


def real_binary() -> None:
    """The real-valued + binary variant: codes, real vectors, and codes rescored by reals."""
    settings = BinaryPVTraining(**{**TRAINING.__dict__, "bits": REAL_BITS, "real_dim": REAL_DIM})
    model = trained("real-binary", settings)
    test = densekit.load_beir(dataset("scifact"), "test")
    rows = DATA["rows"]
    with collection_of(model, "binary") as codes, collection_of(model, "flat", "real") as real:
        rows["real-binary codes"] = measured(codes, test) | {"model": _report(model)}
        rows["real-binary real"] = measured(real, test)
        for depth in DEPTHS:
            rows[f"real-binary codes + real rescore {depth}"] = rescored(codes, real, test, depth)
    save()


def rescored(
    codes: densekit.Collection, real: densekit.Collection, test: Any, depth: int
) -> dict[str, Any]:
    """Each query's Hamming top 100 x ``depth`` by its code, reranked by its real vector."""
    ids = sorted(test.queries)
    texts = [test.queries[q] for q in ids]
    query_codes = codes.stored.encoder.encode_queries(texts)
    query_reals = real.stored.encoder.encode_queries(texts)
    rows, _ = codes.stored.dense_index.search(query_codes, 100 * depth)
    names = codes.stored.documents.ids_by_row(codes.stored.manifest.document_rows)
    reals = np.vstack(real.stored.dense_index.shards).astype(np.float32)
    run = {}
    for query, shortlist, vector in zip(ids, rows, query_reals, strict=True):
        shortlist = shortlist[shortlist >= 0]
        scores = reals[shortlist] @ vector
        best = np.argsort(-scores, kind="stable")[:100]
        run[query] = {names[shortlist[i]]: float(scores[i]) for i in best}
    return evaluated(densekit.evaluate_run(test, run, metrics=MEASURES))


def compare() -> None:
    rows = DATA["rows"]
    tests = {}
    for name, row in rows.items():
        if not name.startswith(("bpv", "real-binary")):
            continue
        bits = name.split()[1] if name.startswith("bpv") else str(REAL_BITS)
        for anchor in ("bm25", f"minilm sign {bits}"):
            if anchor in rows:
                tests[f"{name} vs {anchor}"] = paired_tests(
                    rows[anchor]["per_query"], row["per_query"], "nDCG@10"
                )
    DATA["tests"] = tests


def save() -> None:
    DATA["environment"] = environment()
    write_json("binary_pv", DATA)


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = DATA["rows"]
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for prefix, label in (("minilm sign", "MiniLM sign bits"), ("bpv", "Binary PV codes")):
        points = sorted(
            (row["bytes_per_document"], row["metrics"]["nDCG@10"])
            for name, row in rows.items()
            if name.startswith(prefix) and "bytes_per_document" in row
        )
        axis.plot(*zip(*points, strict=True), marker="o", label=label)
    for name, style in (("bm25", "--"), ("minilm float", ":")):
        axis.axhline(rows[name]["metrics"]["nDCG@10"], color="grey", linestyle=style, label=name)
    axis.set_xscale("log", base=2)
    axis.set_xlabel("index bytes per document")
    axis.set_ylabel("nDCG@10, SciFact test")
    axis.set_title("Binary codes learned from text alone vs MiniLM's sign bits")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
