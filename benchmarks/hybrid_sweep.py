"""Choose convex fusion's dense weight on SciFact's *train* queries, then report it on test.

The weight is `--alpha`'s default (CONVEX_ALPHA) and the fixed fusion of collections built
before calibrated fusion became the hybrid default (benchmarks/fusion.py measures that), so it
is chosen over a collection like those: BM25 with classic terms (no exact forms or word pairs).

    .venv/bin/python benchmarks/hybrid_sweep.py

Dense and BM25 candidates (depth 100) are computed once per split; each fusion setting re-fuses
them. Writes benchmarks/results/hybrid_sweep.json.
"""

from __future__ import annotations

from _common import build_or_open, dataset, environment, write_json

import densekit
from densekit.retrieve import FusionConfig, Ranking
from densekit.retrieve.fusion import CONVEX_ALPHA

SETTINGS = [FusionConfig.hybrid("convex", alpha=a / 10) for a in range(1, 10)] + [
    FusionConfig.hybrid("rrf", rrf_k=k) for k in (10, 60)
]
DEPTH = 100


def candidates(collection: densekit.Collection, queries: list[str]):
    vectors = collection.encoder.encode_queries(queries)
    rows, scores = collection.dense_index.search(vectors, DEPTH)
    dense = [Ranking(r, s) for r, s in zip(rows, scores, strict=True)]
    lexical = [Ranking(r, s) for r, s in collection.lexical_index.search(queries, DEPTH)]
    return dense, lexical


def score(collection, data, dense, lexical, config: FusionConfig) -> float:
    ids = collection.doc_ids
    run = {}
    for query_id, d, lex in zip(data.queries, dense, lexical, strict=True):
        fused = config.fuse([d, lex]).top(DEPTH)
        run[query_id] = {ids[r]: float(s) for r, s in zip(fused.rows, fused.scores, strict=True)}
    return densekit.compute_metrics(data.qrels, run, ["nDCG@10"]).aggregate["nDCG@10"]


def label(config: FusionConfig) -> str:
    return f"convex alpha={config.alpha:.1f}" if config.method == "convex" else f"rrf k={config.k}"


def main() -> None:
    collection = build_or_open("scifact", classic_bm25=True)
    table = {}
    for split in ("train", "test"):
        data = densekit.load_beir(dataset("scifact"), split)
        dense, lexical = candidates(collection, list(data.queries.values()))
        table[split] = {
            label(c): round(score(collection, data, dense, lexical, c), 4) for c in SETTINGS
        }
    best = max(table["train"], key=table["train"].get)
    for name in table["train"]:
        mark = "  <- best on train" if name == best else ""
        print(f"{name:20} train {table['train'][name]:.4f}  test {table['test'][name]:.4f}{mark}")
    default = label(FusionConfig.hybrid("convex", CONVEX_ALPHA))
    write_json(
        "hybrid_sweep",
        {
            "environment": environment(),
            "dataset": "scifact",
            "metric": "nDCG@10",
            "best_on_train": best,
            "default": default,
            "default_test": table["test"][default],
            "train": table["train"],
            "test": table["test"],
        },
    )


if __name__ == "__main__":
    main()
