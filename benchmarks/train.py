"""Fine-tuning MiniLM on SciFact's train split: the recipe ablation, soups, the 2D Matryoshka
grid and the forgetting guard.

    .venv/bin/python benchmarks/train.py [--only ROW ...] [--fresh]

Every model is trained by `densekit train` (densekit.train.train_model) from the bundled MiniLM
on SciFact train only (10% of its queries held out as dev), seed 0, on this CPU; negatives are
mined from the SciFact MiniLM collection (its BM25 with classic terms, as when these rows were
first measured). Each ablation row adds one thing to the one above:

  in-batch only -> + mined negatives -> + focal (gamma 2) -> + mixing; + distillation
  (MarginMSE from the `train-reranker` cross-encoder of benchmarks/pipeline.py) on + focal,
  since mixing lowered the scores -> + soup (greedy, by dev nDCG@10, over the rows above).

Per row: SciFact test nDCG@10 and R@100 (dense retrieval with the trained model), also apart
on the test queries whose relevant documents train judged too (seen) or not (unseen), dev
nDCG@10 before/after, training seconds, and per-query scores; each row is tested (paired t-test
and randomisation test) against the base and against the row it adds to. Then STS-B test
Spearman of the best row vs the base, and 2D Matryoshka: the recipe of + mined negatives with
the loss also on shallower layers and embedding prefixes, trained by this script (`--device`:
where; recorded), and its nDCG@10 over layers {2, 4, 6} x dims {32, 64, 128, 256, 384} against
the base cut the same way, each cell with a paired test. The grid encodes once per
(model, layers) at full width and cuts the stored vectors to each width; one cell is checked
against `--layers/--dim`.
The default recipe (`densekit train` with no recipe: the mined-negatives recipe for up to 4
epochs at lr 3e-5, the epoch kept and the stop chosen by dev nDCG@10) is its own row, with its
dev score after every epoch, tested against + mined negatives and the base.
Results are saved after each measurement; a rerun measures only what is missing, `--only PART`
measures the named parts again (ablation rows by label, "default recipe", "base", "+ soup",
"stsb", "2d"), and `--fresh` measures everything again. QUICK=1: one ablation row and the
default recipe (souped together), one epoch, a smaller grid.

Writes benchmarks/results/train.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    paired_tests_with_unseen,
    seen_unseen,
    write_json,
)

import densekit
from densekit.evaluate.metrics import MetricResult, compute_metrics
from densekit.store import BuildOptions
from densekit.train import Mixing, soup_models
from densekit.train.bi_encoder import train_model
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
TRAIN = TrainRecipe(
    epochs=1 if QUICK else 2, batch=32, learning_rate=3e-5, dev_share=0.1, checkpoint_steps=25
)
MINED = DataRecipe(negatives=3, ranks=(10, 60), margin=0.95)


def ablation() -> dict[str, Recipe]:
    focal = LossRecipe(focal_gamma=2.0)
    mixing = replace(focal, mixing=Mixing(pairs=8, with_query=4, hardest=16))
    # Distillation goes on the best recipe so far: + focal (mixing lowered dev and test scores).
    distill = replace(focal, distill=DistillRecipe(teacher=str(TEACHER), kind="margin-mse"))
    rows = {
        "in-batch only": Recipe(DataRecipe(negatives=0, margin=None), LossRecipe(), TRAIN),
        "+ mined negatives": Recipe(MINED, LossRecipe(), TRAIN),
        "+ focal": Recipe(MINED, focal, TRAIN),
        "+ mixing": Recipe(MINED, mixing, TRAIN),
        "+ distillation": Recipe(MINED, distill, TRAIN),
    }
    # QUICK: one row; the default recipe's model is the soup's second ingredient.
    return {"+ mined negatives": rows["+ mined negatives"]} if QUICK else rows


# `densekit train DATASET --collection DIR` with no recipe: up to 4 epochs, the epoch kept and
# the stop chosen by dev nDCG@10 (QUICK: at most 1 epoch).
DEFAULT_ROW = "default recipe"


def default_recipe() -> Recipe:
    recipe = Recipe()
    return replace(recipe, train=replace(recipe.train, epochs=1)) if QUICK else recipe


# The row each row adds one thing to: the paired tests compare them.
PARENT = {
    DEFAULT_ROW: "+ mined negatives",
    "in-batch only": "base",
    "+ mined negatives": "in-batch only",
    "+ focal": "+ mined negatives",
    "+ mixing": "+ focal",
    "+ distillation": "+ focal",
    "+ soup": "+ mined negatives",
}


TWO_D = Recipe(MINED, LossRecipe(matryoshka=MatryoshkaRecipe(layers=True)), TRAIN)
LAYERS, DIMS = ((2, 6), (64, 384)) if QUICK else ((2, 4, 6), (32, 64, 128, 256, 384))
TRAINED_BY = "benchmarks/train.py"
DEVICE = "cpu"  # set by --device
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
    return scores | {"seen_unseen": seen_unseen(report.per_query), "per_query": report.per_query}


def train_row(recipe: Recipe, folder: Path) -> dict:
    started = time.perf_counter()
    report = train_model(
        dataset("scifact"),
        folder,
        recipe=recipe,
        collection=build_or_open("scifact", classic_bm25=True).directory,
        overwrite=True,
        restart=True,
    )
    return {
        **test_scores(str(folder)),
        "dev_before": report.dev_before,
        "dev_after": report.dev_after,
        "dev_by_epoch": report.dev_by_epoch,
        "best_epoch": report.best_epoch,
        "train_seconds": round(time.perf_counter() - started, 1),
        "device": DEVICE,
        "rows": report.rows,
        "recipe": report.recipe,
    }


def run_ablation(rows: dict, wanted: Callable[[str], bool]) -> None:
    if "base" not in rows and wanted("base"):
        rows["base"] = test_scores("minilm")
        save()
    for label, recipe in ablation().items():
        if label in rows or not wanted(label):
            continue
        rows[label] = train_row(recipe, MODELS / _slug(label))
        print(label, json.dumps(_summary(rows[label])), flush=True)
        save()
    if DEFAULT_ROW not in rows and wanted(DEFAULT_ROW):
        rows[DEFAULT_ROW] = train_row(default_recipe(), MODELS / _slug(DEFAULT_ROW))
        print(DEFAULT_ROW, json.dumps(_summary(rows[DEFAULT_ROW])), flush=True)
        save()
    labels = [*ablation(), *([DEFAULT_ROW] if QUICK else [])]
    trained = [MODELS / _slug(label) for label in labels if (MODELS / _slug(label)).exists()]
    if "+ soup" not in rows and len(trained) >= 2 and wanted("+ soup"):
        started = time.perf_counter()
        soup = soup_models(trained, MODELS / "soup", greedy=True, dev=dev_dataset(), overwrite=True)
        rows["+ soup"] = {
            **test_scores(str(MODELS / "soup")),
            "used": [Path(p).name for p in soup.used],
            "seconds": round(time.perf_counter() - started, 1),
        }
        save()


def ablation_tests(rows: dict) -> dict:
    """Each row against the row it adds to and against the base, on per-query nDCG@10 of all
    test queries and of the unseen ones (rows measured before per-query scores were kept are
    left out)."""
    scored = {label: row["per_query"] for label, row in rows.items() if "per_query" in row}
    tests = {}
    for label, parent in PARENT.items():
        for other in dict.fromkeys((parent, "base")):
            if label in scored and other in scored:
                tests[f"{label} vs {other}"] = paired_tests_with_unseen(
                    scored[other], scored[label], "nDCG@10"
                )
    return tests


def _summary(row: dict) -> dict:
    return {key: value for key, value in row.items() if key not in ("recipe", "per_query")}


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
    if grid.get("training", {}).get("trained_by") != TRAINED_BY:
        grid.clear()  # a grid is only kept for a model this script trained itself
        grid["training"] = {**_summary(train_row(TWO_D, folder)), "trained_by": TRAINED_BY}
        save()
    tests = grid.setdefault("tests", {})
    for layers in LAYERS:
        if all(f"L{layers}xD{dim}" in tests for dim in DIMS):
            continue
        trained, base = cut_scores(str(folder), layers), cut_scores("minilm", layers)
        for cell in trained:
            grid.setdefault("trained", {})[cell] = round(trained[cell].aggregate["nDCG@10"], 4)
            grid.setdefault("base", {})[cell] = round(base[cell].aggregate["nDCG@10"], 4)
            tests[cell] = paired_tests(base[cell].per_query, trained[cell].per_query, "nDCG@10")
        print(layers, {cell: grid["trained"][cell] for cell in trained}, flush=True)
        save()
    if "check" not in grid:
        # One cell through the real path (`--layers L --dim D`): the grid's shortcut of cutting
        # stored full-width vectors must give the same number.
        layers, dim = LAYERS[len(LAYERS) // 2], DIMS[len(DIMS) // 2]
        grid["check"] = {
            "cell": f"trained L{layers}xD{dim}",
            "grid": grid["trained"][f"L{layers}xD{dim}"],
            f"densekit eval --layers {layers} --dim {dim}": test_scores(
                str(folder), layers=layers, dim=dim
            )["nDCG@10"],
        }
        save()


def cut_scores(model: str, layers: int) -> dict[str, MetricResult]:
    """Test nDCG@10 (with per-query scores) at every width of DIMS with the first ``layers``
    layers.

    Encodes once at full width and cuts the stored vectors (first d dims, renormalised),
    which is what `--dim d` does when it encodes.
    """
    from densekit.evaluate.beir import load_beir
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
        cells[f"L{layers}xD{dim}"] = compute_metrics(data.qrels, run, ["nDCG@10"])
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


def select_device(choice: str) -> str:
    """Where the models train and encode, by name ("cpu" or the GPU's)."""
    if choice == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch first looks for a GPU
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA GPU here")
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def main() -> None:
    global DEVICE
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=[], help="parts to measure (again)")
    parser.add_argument("--fresh", action="store_true", help="measure everything again")
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="where to train (auto: a CUDA GPU if torch sees one); recorded with each model",
    )
    args = parser.parse_args()
    DEVICE = select_device(args.device)
    previous = RESULTS / "train.json"
    if previous.exists() and not args.fresh:
        RESULTS_DATA.update(json.loads(previous.read_text()))
    RESULTS_DATA["environment"] = environment()
    rows = RESULTS_DATA.setdefault("ablation", {})
    only = set(args.only)
    for part in only:  # measured again
        rows.pop(part, None)
        RESULTS_DATA.pop({"stsb": "stsb_spearman", "2d": "matryoshka_2d"}.get(part, part), None)

    def wanted(part: str) -> bool:
        return not only or part in only

    run_ablation(rows, wanted)
    RESULTS_DATA["tests"] = ablation_tests(rows)
    save()
    if wanted("stsb"):
        run_guard(rows)
    if wanted("2d"):
        run_two_d(RESULTS_DATA.setdefault("matryoshka_2d", {}))
    print("wrote", RESULTS / "train.json")


def run_guard(rows: dict) -> None:
    """STS-B Spearman of the base and of the best row: what fine-tuning forgot."""
    best = max((name for name in rows if name != "base"), key=lambda name: rows[name]["nDCG@10"])
    guard = RESULTS_DATA.setdefault("stsb_spearman", {})
    if "base" not in guard:
        guard["base"] = sts_spearman("minilm")
    best_folder = MODELS / ("soup" if best == "+ soup" else _slug(best))
    if guard.get("best_row") != best:
        guard.update(best_row=best, fine_tuned=sts_spearman(str(best_folder)))
    save()


if __name__ == "__main__":
    main()
