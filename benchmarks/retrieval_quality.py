"""Retrieval quality of dense (MiniLM), BM25 and hybrid on SciFact, LIMIT-small and Cranfield,
next to the published reference numbers, and SciFact encode throughput next to plain
sentence-transformers encoding of the same texts in the same run.

dense, bm25 and hybrid are the retrievers of one default (hybrid) collection per dataset, whose
BM25 also indexes exact word forms and word pairs; "bm25 classic" is a BM25 collection's
(`densekit index --retriever bm25`: stems only, as the published BM25 numbers score).

    .venv/bin/python benchmarks/retrieval_quality.py [--rebuild]

Writes benchmarks/results/retrieval_quality.json and retrieval_quality.png.
"""

from __future__ import annotations

import argparse
import time

from _common import BUILD, RESULTS, build_once, build_or_open, dataset, environment, write_json

import densekit

METRICS = ["nDCG@10", "R@100", "RR@10", "AP@100", "R@2"]
PUBLISHED = {
    "scifact": {
        "dense": {"nDCG@10": 0.6451, "source": "MTEB, all-MiniLM-L6-v2"},
        "bm25": {"nDCG@10": 0.665, "source": "BEIR paper (0.679 Lucene flat)"},
    },
    "limit-small": {
        "dense": {"R@2": 0.162, "source": "LIMIT paper, all-MiniLM-L6-v2"},
        "bm25": {"R@2": 0.978, "source": "LIMIT paper"},
    },
    "cranfield": {},
}


def evaluate_all(name: str, rebuild: bool) -> dict:
    started = time.perf_counter()
    collection = build_or_open(name, rebuild=rebuild)
    build_seconds = time.perf_counter() - started
    results = {}
    rows = [(r, collection, r) for r in ("dense", "bm25", "hybrid")]
    for label, searched, retriever in [*rows, ("bm25 classic", classic_bm25(name), "bm25")]:
        report = densekit.evaluate(
            dataset(name), collection=searched, retriever=retriever, metrics=METRICS
        )
        results[label] = {k: round(v, 4) for k, v in report.metrics.items()}
        print(
            f"{name:12} {label:12} " + "  ".join(f"{k} {v:.4f}" for k, v in report.metrics.items())
        )
    return {
        "documents": len(collection),
        "queries": report.queries,
        "build_stats": collection.manifest.stats,
        "build_seconds_this_run": round(build_seconds, 2),
        "results": results,
        "published": PUBLISHED[name],
    }


def classic_bm25(name: str) -> densekit.Collection:
    """A BM25 collection of the dataset's corpus: classic BM25 terms."""
    out = BUILD / f"{name}-bm25"
    options = densekit.BuildOptions(retriever="bm25", cache_dir=None)
    return build_once(dataset(name) / "corpus.jsonl", out, options)


def encode_throughput(collection: densekit.Collection) -> dict:
    """densekit's build encoding vs. one plain SentenceTransformer.encode over the same texts."""
    from sentence_transformers import SentenceTransformer

    texts = [doc.content for doc in collection.documents.iter_documents()]
    model = SentenceTransformer(densekit.resolve_model("minilm").location, device="cpu")
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    anchor = len(texts) / (time.perf_counter() - started)
    ours = collection.manifest.stats["encode_docs_per_second"]
    return {
        "documents": len(texts),
        "densekit_docs_per_second": ours,
        "sentence_transformers_docs_per_second": round(anchor, 2),
        "ratio": round(ours / anchor, 3),
    }


def plot(data: dict) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    panels = [("scifact", "nDCG@10"), ("cranfield", "nDCG@10"), ("limit-small", "R@2")]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    for axis, (name, metric) in zip(axes, panels, strict=True):
        values = [data["datasets"][name]["results"][r][metric] for r in ("dense", "bm25", "hybrid")]
        bars = axis.bar(
            ["dense", "bm25", "hybrid"], values, color=["#4C72B0", "#DD8452", "#55A868"]
        )
        axis.bar_label(bars, fmt="%.3f")
        for retriever, ref in data["datasets"][name]["published"].items():
            if metric in ref:
                x = ["dense", "bm25", "hybrid"].index(retriever)
                axis.hlines(ref[metric], x - 0.4, x + 0.4, colors="black", linestyles="dashed")
        axis.set_title(f"{name} — {metric}")
        axis.set_ylim(0, 1.05)
    fig.suptitle("densekit retrieval quality (dashed: published reference)")
    fig.tight_layout()
    fig.savefig(RESULTS / "retrieval_quality.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rebuild", action="store_true", help="rebuild cached collections")
    args = parser.parse_args()
    data = {"environment": environment(), "datasets": {}}
    for name in ("scifact", "limit-small", "cranfield"):
        data["datasets"][name] = evaluate_all(name, args.rebuild)
    data["encode_throughput_scifact"] = encode_throughput(build_or_open("scifact"))
    print("encode throughput:", data["encode_throughput_scifact"])
    print("wrote", write_json("retrieval_quality", data))
    plot(data)


if __name__ == "__main__":
    main()
