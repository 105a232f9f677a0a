"""Changing a collection in place against rebuilding it, on SciFact with real MiniLM vectors.

    .venv/bin/python benchmarks/index_updates.py

For each index spec: build a collection of 90% of the SciFact corpus, then apply the other 10% as
five `add` changes, then one change that updates 2% and deletes 5% of the first documents. The
added and updated documents are encoded during the changes (no cache: they are new text), as a
user's new documents would be. Measured per spec:

- seconds per change, against a full rebuild of the same final documents, both with all vectors
  cached (the indexing work alone) and, once, with nothing cached (what a user without
  incremental updates pays: encoding every document again);
- SciFact test nDCG@10 (dense retriever) of the changed collection, of a fresh build of the same
  documents, and after `compact`;
- disk bytes before and after compaction.

Writes benchmarks/results/index_updates.json.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import BUILD, QUICK, build_or_open, dataset, environment, write_json

import densekit
from densekit.corpus import Document, read_corpus
from densekit.encode.cache import EmbeddingCache
from densekit.evaluate.beir import load_beir

SPECS = ["flat", "HNSW32", "IVF64,PQ48(nprobe=16)+rescore*10", "binary+rescore*4"]
if QUICK:  # the 200-document SciFact copy is too small to train PQ's 256 centroids
    SPECS = [spec for spec in SPECS if "PQ" not in spec]
BATCHES = 5
ADDED_SHARE, UPDATED_SHARE, DELETED_SHARE = 0.10, 0.02, 0.05


def write_corpus(path: Path, documents: list[Document]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for d in documents:
            handle.write(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n")
    return path


def split_corpus(documents: list[Document], seed: int = 0) -> dict[str, list]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(documents))
    added_count = int(ADDED_SHARE * len(documents))
    base = [documents[i] for i in order[added_count:]]
    added = [documents[i] for i in order[:added_count]]
    picked = rng.permutation(len(base))
    updated_count, deleted_count = (int(s * len(base)) for s in (UPDATED_SHARE, DELETED_SHARE))
    # An update rewrites the document: here its text without its title, which changes its vector.
    updated = [
        Document(base[i].id, base[i].text, metadata={"revised": True})
        for i in picked[:updated_count]
    ]
    deleted = [base[i].id for i in picked[updated_count : updated_count + deleted_count]]
    replaced = {d.id: d for d in updated}
    final = [replaced.get(d.id, d) for d in base if d.id not in set(deleted)] + added
    return {"base": base, "added": added, "updated": updated, "deleted": deleted, "final": final}


def warm_cache(cache_dir: Path, parts: dict[str, list], encoder: densekit.Encoder) -> None:
    """Every document's vector in the cache, reusing the benchmark collection's stored ones."""
    reference = build_or_open("scifact")
    vectors, _ = reference.dense_vectors()
    row_of = {doc_id: row for row, doc_id in enumerate(reference.row_ids)}
    cache = EmbeddingCache(cache_dir, encoder.fingerprint, encoder.dimension)
    known = [*parts["base"], *parts["added"]]
    cache.put_many(
        [d.content for d in known], vectors.take(np.array([row_of[d.id] for d in known]))
    )
    revised = [d.content for d in parts["updated"]]
    cache.put_many(revised, encoder.encode_documents(revised))
    cache.close()


def ndcg(directory: Path, data) -> float:
    report = densekit.evaluate(data, collection=directory, retriever="dense", metrics=["nDCG@10"])
    return round(report.metrics["nDCG@10"], 4)


def disk_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def measure_spec(spec, parts, corpora, cache_dir, encoder, data, scratch) -> dict:
    out = scratch / spec.replace(",", "_").replace("*", "x").replace("(", "").replace(")", "")
    options = densekit.BuildOptions(index=spec, cache_dir=cache_dir, progress=False)
    densekit.build_collection(corpora["base"], out, options, overwrite=True, encoder=encoder)
    batches = np.array_split(np.arange(len(parts["added"])), BATCHES)
    add_seconds = []
    for batch in batches:
        started = time.perf_counter()
        densekit.update_collection(
            out, add=[parts["added"][i] for i in batch], encoder=encoder, cache=False
        )
        add_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    densekit.update_collection(
        out, update=parts["updated"], delete=parts["deleted"], encoder=encoder, cache=False
    )
    update_delete_seconds = time.perf_counter() - started
    changed_ndcg = ndcg(out, data)
    disk_changed = disk_bytes(out)
    started = time.perf_counter()
    densekit.compact_collection(out)
    compact_seconds = time.perf_counter() - started
    compacted_ndcg = ndcg(out, data)

    fresh = scratch / f"{out.name}-fresh"
    started = time.perf_counter()
    densekit.build_collection(corpora["final"], fresh, options, overwrite=True, encoder=encoder)
    rebuild_seconds = time.perf_counter() - started
    fresh_ndcg = ndcg(fresh, data)
    result = {
        "spec": spec,
        "add_seconds_per_batch": round(float(np.median(add_seconds)), 3),
        "documents_per_add_batch": len(batches[0]),
        "update_and_delete_seconds": round(update_delete_seconds, 3),
        "compact_seconds": round(compact_seconds, 3),
        "rebuild_seconds_vectors_cached": round(rebuild_seconds, 3),
        "ndcg_at_10_changed": changed_ndcg,
        "ndcg_at_10_fresh_build": fresh_ndcg,
        "ndcg_at_10_compacted": compacted_ndcg,
        "disk_bytes_changed": disk_changed,
        "disk_bytes_compacted": disk_bytes(out),
    }
    print(json.dumps(result), flush=True)
    return result


def main() -> None:
    documents = list(read_corpus(dataset("scifact") / "corpus.jsonl"))
    data = load_beir(dataset("scifact"), "test")
    parts = split_corpus(documents)
    encoder = densekit.load_encoder("minilm")
    scratch = BUILD / "index-updates"
    scratch.mkdir(parents=True, exist_ok=True)
    corpora = {
        name: write_corpus(scratch / f"{name}.jsonl", parts[name]) for name in ("base", "final")
    }
    results = []
    with tempfile.TemporaryDirectory(prefix="densekit-updates-cache-") as cache:
        warm_cache(Path(cache), parts, encoder)
        for spec in SPECS:
            results.append(measure_spec(spec, parts, corpora, Path(cache), encoder, data, scratch))
    # What changing in place saves a user: a rebuild that encodes every document again.
    started = time.perf_counter()
    densekit.build_collection(
        corpora["final"],
        scratch / "cold-rebuild",
        densekit.BuildOptions(cache_dir=None, progress=False),
        overwrite=True,
        encoder=encoder,
    )
    cold_rebuild = round(time.perf_counter() - started, 3)
    print(f"cold rebuild (flat, encoding everything): {cold_rebuild} s", flush=True)
    for result in results:
        result["add_speedup_vs_cold_rebuild"] = round(
            cold_rebuild / result["add_seconds_per_batch"], 1
        )
    data_out = {
        "environment": environment(),
        "corpus": "scifact",
        "documents": {name: len(parts[name]) for name in parts},
        "cold_rebuild_seconds": cold_rebuild,
        "results": results,
    }
    print("wrote", write_json("index_updates", data_out))


if __name__ == "__main__":
    main()
