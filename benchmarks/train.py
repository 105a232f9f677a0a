"""Fine-tuning MiniLM on SciFact's train split: the recipe ablation, soups, the 2D Matryoshka
grid and the forgetting guard.

    .venv/bin/python benchmarks/train.py [--only ROW ...] [--fresh]

Every model is trained by `densekit train` (densekit.train.train_model) from the bundled MiniLM
on SciFact train only (10% of its queries held out as dev), seed 0, on this CPU; negatives are
mined from the SciFact MiniLM collection. Each ablation row adds one thing to the one above:

  in-batch only -> + mined negatives -> + focal (gamma 2) -> + mixing; + distillation
  (MarginMSE from the `train-reranker` cross-encoder of benchmarks/pipeline.py) on + focal,
  since mixing lowered the scores -> + soup (greedy, by dev nDCG@10, over the rows above).

Per row: SciFact test nDCG@10 and R@100 (dense retrieval with the trained model), also apart
on the test queries whose relevant documents train judged too (seen) or not (unseen), dev
nDCG@10 before/after, training seconds. Then 2D Matryoshka: nDCG@10 over layers {2, 4, 6} x dims
{32, 64, 128, 256, 384} for the 2D-trained model and the base cut the same way; and STS-B test
Spearman of the best row vs the base. The grid encodes once per (model, layers) at full width
and cuts the stored vectors to each width; one cell is checked against `--layers/--dim`.
Results are saved after each measurement; a rerun measures only what is missing (`--fresh`
measures everything again).

Writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import BUILD, RESULTS, build_or_open, dataset, environment, seen_unseen, write_json

import densekit
from densekit.store import BuildOptions
from densekit.train import Mixing, soup_models
from densekit.train.bi_encoder import CARD_FILE, train_model
from densekit.train.mining import MiningConfig as DataRecipe
from densekit.train.recipe import (
    DistillRecipe,
    LossRecipe,
    MatryoshkaRecipe,
    Recipe,
    TrainRecipe,
)

MODELS = BUILD / "train"
TEACHER = BUILD / "scifact-reranker"
TRAIN = TrainRecipe(epochs=2, batch=32, learning_rate=3e-5, dev_share=0.1, checkpoint_steps=25)
MINED = DataRecipe(negatives=3, ranks=(10, 60), margin=0.95)


def ablation() -> dict[str, Recipe]:
    focal = LossRecipe(focal_gamma=2.0)
    mixing = replace(focal, mixing=Mixing(pairs=8, with_query=4, hardest=16))
    # Distillation goes on the best recipe so far: + focal (mixing lowered dev and test scores).
    distill = replace(focal, distill=DistillRecipe(teacher=str(TEACHER), kind="margin-mse"))
    return {
        "in-batch only": Recipe(DataRecipe(negatives=0, margin=None), LossRecipe(), TRAIN),
        "+ mined negatives": Recipe(MINED, LossRecipe(), TRAIN),
        "+ focal": Recipe(MINED, focal, TRAIN),
        "+ mixing": Recipe(MINED, mixing, TRAIN),
        "+ distillation": Recipe(MINED, distill, TRAIN),
    }


TWO_D = Recipe(MINED, LossRecipe(matryoshka=MatryoshkaRecipe(layers=True)), TRAIN)
LAYERS, DIMS = (2, 4, 6), (32, 64, 128, 256, 384)
RESULTS_DATA: dict = {}


def save() -> None:
    write_json("train", RESULTS_DATA)


def test_scores(model: str, **cut: int | None) -> dict:
    """Test nDCG@10 and R@100, and the same apart on the test queries whose relevant
    documents were judged in train (seen) or not (unseen): a model trained on train can gain
    on the seen ones by learning which documents get cited."""
    options = BuildOptions(model=model, retriever="dense", cache_dir=None, progress=False, **cut)
    report = densekit.evaluate(
        dataset("scifact"), metrics=["nDCG@10", "R@100"], build_options=options
    )
    scores: dict = {m: round(v, 4) for m, v in report.metrics.items()}
    return scores | {"seen_unseen": seen_unseen(report.per_query)}


def train_row(label: str, recipe: Recipe, folder: Path) -> dict:
    started = time.perf_counter()
    report = train_model(
        dataset("scifact"),
        folder,
        recipe=recipe,
        collection=build_or_open("scifact").directory,
        overwrite=True,
        restart=True,
    )
    return {
        **test_scores(str(folder)),
        "dev_before": report.dev_before,
        "dev_after": report.dev_after,
        "train_seconds": round(time.perf_counter() - started, 1),
        "rows": report.rows,
        "recipe": report.recipe,
    }


def run_ablation(rows: dict, only: set[str]) -> None:
    if "base" not in rows:
        rows["base"] = test_scores("minilm")
        save()
    for label, recipe in ablation().items():
        if label in rows or (only and label not in only):
            continue
        rows[label] = train_row(label, recipe, MODELS / _slug(label))
        print(label, json.dumps({k: v for k, v in rows[label].items() if k != "recipe"}))
        save()
    trained = [MODELS / _slug(label) for label in ablation() if (MODELS / _slug(label)).exists()]
    if "+ soup" not in rows and len(trained) >= 2 and (not only or "+ soup" in only):
        started = time.perf_counter()
        soup = soup_models(trained, MODELS / "soup", greedy=True, dev=dev_dataset(), overwrite=True)
        rows["+ soup"] = {
            **test_scores(str(MODELS / "soup")),
            "used": [Path(p).name for p in soup.used],
            "seconds": round(time.perf_counter() - started, 1),
        }
        save()


def dev_dataset() -> Path:
    """SciFact's corpus and the train queries every row held out (dev_share, seed), as a
    dataset with a dev split: the soup is chosen on them, never on test."""
    from densekit.evaluate.beir import load_beir
    from densekit.train.pairs import split_dev

    train = load_beir(dataset("scifact"), "train")
    judged = {q: docs for q, docs in train.qrels.items() if any(g > 0 for g in docs.values())}
    _, dev = split_dev(judged, TRAIN.dev_share, TRAIN.seed)
    root = BUILD / "scifact-dev"
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = root / "corpus.jsonl"
    if not corpus.exists():
        corpus.symlink_to(dataset("scifact") / "corpus.jsonl")
    (root / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": train.queries[q]}) + "\n" for q in sorted(dev))
    )
    lines = [f"{q}\t{d}\t{g}" for q in sorted(dev) for d, g in sorted(train.qrels[q].items())]
    (root / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(lines))
    return root


def run_two_d(grid: dict) -> None:
    folder = MODELS / "two-d"
    card = folder / CARD_FILE
    if "training" not in grid:
        # A model already there (e.g. trained by the same code on an accelerator) is used as is.
        trained = json.loads(card.read_text()) if card.exists() else train_row("2d", TWO_D, folder)
        grid["training"] = {k: v for k, v in trained.items() if k != "recipe"}
        save()
    for name, model in (("trained", str(folder)), ("base", "minilm")):
        cells = grid.setdefault(name, {})
        for layers in LAYERS:
            if all(f"L{layers}xD{dim}" in cells for dim in DIMS):
                continue
            cells.update(cut_scores(model, layers))
            print(name, layers, {k: v for k, v in cells.items() if k.startswith(f"L{layers}x")})
            save()
    if "check" not in grid:
        # One cell through the real path (`--layers 4 --dim 128`): the grid's shortcut of
        # cutting stored full-width vectors must give the same number.
        grid["check"] = {
            "cell": "trained L4xD128",
            "grid": grid["trained"]["L4xD128"],
            "densekit eval --layers 4 --dim 128": test_scores(str(folder), layers=4, dim=128)[
                "nDCG@10"
            ],
        }
        save()


def cut_scores(model: str, layers: int) -> dict[str, float]:
    """Test nDCG@10 at every width of DIMS with the first ``layers`` layers.

    Encodes once at full width and cuts the stored vectors (first d dims, renormalised),
    which is what `--dim d` does when it encodes.
    """
    from densekit.evaluate.beir import load_beir
    from densekit.evaluate.metrics import compute_metrics
    from densekit.retrieve import build_collection

    data = load_beir(dataset("scifact"), "test")
    options = BuildOptions(
        model=model, retriever="dense", cache_dir=None, progress=False, layers=layers
    )
    folder = BUILD / "two-d-grid" / f"{Path(model).name}-L{layers}"
    with build_collection(data.corpus_path, folder, options, overwrite=True) as collection:
        documents = np.concatenate(list(collection.dense_vectors()[0].blocks()))
        query_ids = list(data.queries)
        queries = collection.encoder.encode_queries([data.queries[q] for q in query_ids])
        ids = collection.row_ids
    cells = {}
    for dim in DIMS:
        docs, qs = _unit(documents[:, :dim]), _unit(queries[:, :dim])
        scores = qs @ docs.T
        top = np.argsort(-scores, axis=1)[:, :100]
        run = {
            q: {ids[row]: float(scores[i, row]) for row in top[i]} for i, q in enumerate(query_ids)
        }
        cells[f"L{layers}xD{dim}"] = round(
            compute_metrics(data.qrels, run, ["nDCG@10"]).aggregate["nDCG@10"], 4
        )
    return cells


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def sts_spearman(model: str) -> float:
    from scipy.stats import spearmanr

    with (dataset("stsb") / "test.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    encoder = densekit.load_encoder(model)
    left = encoder.encode_queries([r["sentence1"] for r in rows])
    right = encoder.encode_queries([r["sentence2"] for r in rows])
    similarity = np.sum(left * right, axis=1)
    return round(float(spearmanr(similarity, [float(r["score"]) for r in rows]).statistic), 4)


def _slug(label: str) -> str:
    return label.strip("+ ").replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="ablation rows to run")
    parser.add_argument("--fresh", action="store_true", help="measure everything again")
    args = parser.parse_args()
    previous = RESULTS / "train.json"
    if previous.exists() and not args.fresh:
        RESULTS_DATA.update(json.loads(previous.read_text()))
    RESULTS_DATA["environment"] = environment()
    rows = RESULTS_DATA.setdefault("ablation", {})
    run_ablation(rows, set(args.only))
    if args.only:
        return
    best = max((name for name in rows if name != "base"), key=lambda name: rows[name]["nDCG@10"])
    guard = RESULTS_DATA.setdefault("stsb_spearman", {})
    if "base" not in guard:
        guard["base"] = sts_spearman("minilm")
    best_folder = MODELS / ("soup" if best == "+ soup" else _slug(best))
    if guard.get("best_row") != best:
        guard.update(best_row=best, fine_tuned=sts_spearman(str(best_folder)))
    save()
    run_two_d(RESULTS_DATA.setdefault("matryoshka_2d", {}))
    print("wrote benchmarks/results/train.json")


if __name__ == "__main__":
    main()
