"""Learned binary codes against sign bits, on SciFact with MiniLM's vectors.

    .venv/bin/python benchmarks/binary.py [--bits 64,128,256,384] [--fresh]

Codes per size (64, 128, 256 and 384 bits), each searched by Hamming distance alone and with
the float vectors rescoring k x 2, 4 and 10 candidates:

- sign: the sign bits of MiniLM's first N dimensions (`dimN:binary`; all 384 is `binary`, the
  index densekit had before learned codes); MiniLM is not Matryoshka-trained, so the first
  dimensions are no better than any others;
- itq: `binary(learned=1,bits=N)`, ITQ learned from the collection's own vectors at build time;
- distilled: `densekit adapt --kind binary --contrastive 0` from ITQ on the training queries'
  texts: the codes learn the float ranking of those queries, and no judgement is used;
- judged: the same with judged positives (`--contrastive 1`).

Two test sets: SciFact's official test queries (300; sign, itq, and distilled trained on the
official train queries) and the test side of a document-disjoint split of SciFact's judged
queries (`densekit split --by document`, seed 0: no test query shares a relevant document with
a training query), where every variant is trained on the split's training side, judged included:
on the official split a head trained with judgements memorises which documents train queries
cite. Per variant: nDCG@10 and R@100, RAM per document (the index's own bytes), median
milliseconds per single query (the index search alone, query vectors given); paired tests
against sign bits of the same size, and of 128 learned bits against 384 sign bits.

Every variant is made in a copy of the SciFact collection (`densekit reindex`, `adapt`).
Results are saved as they are measured; a rerun measures only what is missing (``--fresh``:
all again). Writes benchmarks/results/binary.json and binary.png.
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
from _common import BUILD, QUICK, RESULTS, build_or_open, dataset, environment, paired_tests
from _common import write_json as save_json

import densekit
from densekit.adapt import AdapterTraining
from densekit.adapt.binary_codes import BINARY_TRAINING, BinaryCodeSpec
from densekit.adapt.on_collection import AdaptOptions, adapt_collection
from densekit.evaluate.splits import load_judged, split_by_document, write_split
from densekit.store.reindexing import reindex_collection

BITS = "64,128" if QUICK else "64,128,256,384"
DEPTHS = (0, 2, 4, 10)
MEASURES = ["nDCG@10", "R@100"]
TRAINING = AdapterTraining(epochs=10, batch=256, temperature=0.02) if QUICK else BINARY_TRAINING
WORK = BUILD / "binary-work"
RESULTS_DATA: dict[str, Any] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", default=BITS)
    parser.add_argument("--fresh", action="store_true", help="measure everything again")
    args = parser.parse_args()
    previous = RESULTS / "binary.json"
    if previous.exists() and not args.fresh:
        RESULTS_DATA.update(json.loads(previous.read_text()))
    if RESULTS_DATA.get("training") != _training_record():
        RESULTS_DATA.clear()  # other training: every trained row is measured again
    RESULTS_DATA["training"] = _training_record()
    source = build_or_open("scifact")
    source.close()
    split = disjoint_split()
    sets = {
        "official": (dataset("scifact"), densekit.load_beir(dataset("scifact"), "test")),
        "disjoint": (split, densekit.load_beir(split, "test")),
    }
    RESULTS_DATA["float"] = {
        name: evaluate_flat(source.directory, data) for name, (_, data) in sets.items()
    }
    for bits in [int(b) for b in args.bits.split(",")]:
        for variant in ("sign", "itq", "distilled", "judged"):
            for name, (training_set, data) in sets.items():
                if variant == "judged" and name == "official":
                    continue  # memorised citations, not codes: see the module's description
                key = f"{variant} {bits}"
                if key in RESULTS_DATA.get(name, {}):
                    continue
                folder = make_variant(source.directory, variant, bits, training_set)
                row = measure(folder, data)
                RESULTS_DATA.setdefault(name, {})[key] = row
                print(name, key, json.dumps(row["metrics"]), flush=True)
                save()
    for name, rows in ((n, RESULTS_DATA.get(n, {})) for n in ("official", "disjoint")):
        for key, row in rows.items():
            if "code_bytes_per_document" not in row:  # measured before storage() was
                variant, bits = key.split()
                with densekit.open_collection(
                    WORK / f"{variant}-{bits}-{sets[name][0].name}"
                ) as kept:
                    row.update(storage(kept))
    compare()
    save()
    plot(RESULTS / "binary.png")


def _training_record() -> dict[str, Any]:
    return {"epochs": TRAINING.epochs, "batch": TRAINING.batch, "temperature": TRAINING.temperature}


def disjoint_split() -> Path:
    out = BUILD / "binary-scifact-disjoint"
    if not (out / "qrels" / "test.tsv").exists():
        split = split_by_document(load_judged(dataset("scifact"), ["train", "test"]), 0.3, 0)
        write_split(split, out, overwrite=True)
        RESULTS_DATA["split"] = {k: v for k, v in split.report().items() if k != "dropped"}
    return out


def make_variant(source: Path, variant: str, bits: int, training_set: Path) -> Path:
    """A copy of the collection at ``source`` indexed with the variant's codes."""
    folder = WORK / f"{variant}-{bits}-{training_set.name}"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    if variant == "sign":
        reindex_collection(folder, "binary" if bits == 384 else f"dim{bits}:binary")
    else:
        contrastive = 1.0 if variant == "judged" else 0.0
        options = AdaptOptions(
            kind="binary",
            binary=BinaryCodeSpec(bits=bits, contrastive=contrastive, rescore=0),
            training=TRAINING,
        )
        report = adapt_collection(None if variant == "itq" else training_set, folder, options)
        RESULTS_DATA.setdefault("trained", {})[f"{variant} {bits} {training_set.name}"] = {
            k: report[k] for k in ("index", "queries", "pairs", "steps", "seconds") if k in report
        }
    return folder


def query_vectors(collection: densekit.Collection, data: Any) -> tuple[list[str], np.ndarray]:
    ids = sorted(data.queries)
    return ids, collection.stored.encoder.encode_queries([data.queries[q] for q in ids])


def run_of(
    collection: densekit.Collection, ids: list[str], vectors: np.ndarray, depth: int
) -> dict:
    index = collection.stored.dense_index
    params = {} if depth is None else {"rescore": depth}
    rows, scores = index.search(vectors, 100, **params)
    names = collection.stored.documents.ids_by_row(collection.stored.manifest.document_rows)
    return {
        query: {names[r]: float(s) for r, s in zip(found, scored, strict=True) if r >= 0}
        for query, found, scored in zip(ids, rows, scores, strict=True)
    }


def evaluate_flat(directory: Path, data: Any) -> dict[str, Any]:
    with densekit.open_collection(directory) as collection:
        ids, vectors = query_vectors(collection, data)
        report = densekit.evaluate_run(
            data, run_of(collection, ids, vectors, None), metrics=MEASURES
        )
        return {"metrics": _rounded(report.metrics)}


def measure(folder: Path, data: Any) -> dict[str, Any]:
    with densekit.open_collection(folder) as collection:
        ids, vectors = query_vectors(collection, data)
        metrics: dict[str, Any] = {}
        per_query: dict[str, Any] = {}
        for depth in DEPTHS:
            report = densekit.evaluate_run(
                data, run_of(collection, ids, vectors, depth), metrics=MEASURES
            )
            metrics[f"rescore {depth}"] = _rounded(report.metrics)
            if depth == 0:  # what the paired tests compare
                per_query = report.per_query
        index = collection.stored.dense_index
        return {
            "index": collection.info()["index"],
            "metrics": metrics,
            "per_query": per_query,
            **storage(collection),
            "median_ms": {f"rescore {d}": latency_ms(index, vectors, d) for d in (0, 2)},
        }


def storage(collection: densekit.Collection) -> dict[str, Any]:
    """RAM per document: the codes FAISS holds, and the whole index (codes and, for learned
    bits, the head: a projection and thresholds, the same for any number of documents)."""
    codes = collection.stored.dense_index.codes
    resident = codes.resident_bytes
    code_bytes = int(codes.index.code_size)
    return {
        "code_bytes_per_document": code_bytes,
        "bytes_per_document": round(resident / len(collection), 1),
        "head_bytes": resident - code_bytes * codes.rows if codes.spec.is_learned_binary else 0,
    }


def latency_ms(index: Any, vectors: np.ndarray, depth: int) -> float:
    index.search(vectors[:1], 10, rescore=depth)
    seconds = []
    for vector in vectors[:100]:
        started = time.perf_counter()
        index.search(vector[None, :], 10, rescore=depth)
        seconds.append(time.perf_counter() - started)
    return round(1000 * statistics.median(seconds), 3)


def compare() -> None:
    """Paired tests of each learned variant against sign bits of its size, unrescored, and of
    128 learned bits against 384 sign bits."""
    tests = {}
    for name, rows in ((n, RESULTS_DATA.get(n, {})) for n in ("official", "disjoint")):
        for key, row in rows.items():
            variant, bits = key.split()
            sign = rows.get(f"sign {bits}")
            if variant == "sign" or sign is None:
                continue
            baselines = [(f"sign {bits}", sign)]
            if bits == "128":
                baselines.append(("sign 384", rows.get("sign 384")))
            for against, baseline in baselines:
                if baseline is None:
                    continue
                tests[f"{name}: {key} vs {against}"] = paired_tests(
                    baseline["per_query"], row["per_query"], "nDCG@10"
                )
    RESULTS_DATA["tests"] = tests


def save() -> None:
    RESULTS_DATA["environment"] = environment()
    save_json("binary", RESULTS_DATA)


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for axis, depth in zip(axes, ("rescore 0", "rescore 2"), strict=True):
        rows = RESULTS_DATA.get("disjoint", {})
        for variant in ("sign", "itq", "distilled", "judged"):
            points = sorted(
                (int(key.split()[1]), row["metrics"][depth]["nDCG@10"])
                for key, row in rows.items()
                if key.split()[0] == variant
            )
            if points:
                axis.plot(*zip(*points, strict=True), marker="o", label=variant)
        flat = RESULTS_DATA["float"]["disjoint"]["metrics"]["nDCG@10"]
        axis.axhline(flat, color="grey", linestyle="--", label="float (exact)")
        axis.set_title(f"document-disjoint SciFact test, {depth}")
        axis.set_xlabel("bits per document")
        axis.set_xscale("log", base=2)
    axes[0].set_ylabel("nDCG@10")
    axes[0].legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 4) for name, value in metrics.items()}


if __name__ == "__main__":
    main()
