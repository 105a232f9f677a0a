"""DefSent+ on MiniLM: sentence embeddings trained on WordNet's definitions, measured on STS-B
and SciFact, and as a start for contrastive training.

    .venv/bin/python benchmarks/defsent.py [--pairs N] [--parts base,quasi,full,off,init] [--fresh]

- base: MiniLM as bundled.
- quasi, full, off: MiniLM trained by `densekit train-defsent` for one epoch on a seeded sample
  of N (PAIRS) of WordNet's (entry, definition) pairs, with the entries' vectors projected each
  way (quasi-isotropic, whitened, not at all).
- Per row: STS-B test Spearman (cosine against the gold score; a paired bootstrap of the
  difference to base over the 1,379 sentence pairs), SciFact test nDCG@10 and R@100 (paired
  t-test and randomisation against base, per query), and the isotropy of the STS-B test's
  sentence embeddings: the mean cosine of 10,000 random pairs and the first principal
  component's share of the variance.
- init: `densekit train` (mined negatives, 2 epochs) on the train side of a document-disjoint
  split of SciFact's judged queries, from base and from the DefSent+ row with the best STS-B
  score, both measured on that split's test (no test query shares a relevant document with a
  training query): does DefSent+ first, then contrastive, beat contrastive alone?

Results are saved after each row; a rerun measures only what is missing (``--fresh``: all
again). Models are kept in build/benchmarks/defsent. Writes benchmarks/results/defsent.json and
defsent.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from _common import BUILD, QUICK, RESULTS, build_or_open, dataset, environment, paired_tests
from _common import write_json as save_json

import densekit
from densekit.evaluate.splits import load_judged, split_by_document, write_split
from densekit.train import train_model
from densekit.train.defsent import DefSentConfig, DefSentTraining, train_defsent
from densekit.train.mining import MiningConfig
from densekit.train.recipe import LossRecipe, Recipe, TrainRecipe

PAIRS = 500 if QUICK else 50_000
ISOTROPIES = ("quasi", "full", "off")
PARTS = ("base", *ISOTROPIES, "init")
WORK = BUILD / "defsent"
CONTRASTIVE = Recipe(
    MiningConfig(negatives=3, ranks=(10, 60), margin=0.95),
    LossRecipe(),
    TrainRecipe(epochs=1 if QUICK else 2, batch=32, learning_rate=3e-5, dev_share=0.0),
)
BOOTSTRAP = 10_000
DATA: dict[str, Any] = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=PAIRS)
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--fresh", action="store_true", help="train and measure all again")
    args = parser.parse_args()
    previous = RESULTS / "defsent.json"
    if args.fresh:
        shutil.rmtree(WORK, ignore_errors=True)
    elif previous.exists():
        DATA.update(json.loads(previous.read_text()))
    if DATA.get("pairs") != args.pairs:  # other training data: every row trained again
        DATA.clear()
        shutil.rmtree(WORK, ignore_errors=True)
    DATA["pairs"] = args.pairs
    rows = DATA.setdefault("rows", {})
    for part in args.parts.split(","):
        if part in rows or (part == "init" and "init" in DATA):
            continue
        if part == "init":
            DATA["init"] = as_initialisation()
        else:
            model = "minilm" if part == "base" else trained(part, args.pairs)
            rows[part] = measured(model)
        compare()
        save()
    plot(RESULTS / "defsent.png")


def trained(isotropy: str, pairs: int) -> str:
    out = WORK / f"minilm-{isotropy}"
    if not (out / "config.json").exists():
        settings = DefSentTraining(isotropy=isotropy, max_pairs=pairs)
        report = train_defsent(DefSentConfig(out, settings=settings, overwrite=True))
        DATA.setdefault("training", {})[isotropy] = report.to_dict()
        print(*report.summary(), sep="\n", flush=True)
    return str(out)


def sts_rows() -> list[dict[str, str]]:
    with (dataset("stsb") / "test.tsv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def measured(model: str) -> dict[str, Any]:
    from scipy.stats import spearmanr

    rows = sts_rows()
    encoder = densekit.load_encoder(model)
    left = encoder.encode_queries([r["sentence1"] for r in rows])
    right = encoder.encode_queries([r["sentence2"] for r in rows])
    similarity = np.sum(left * right, axis=1)
    gold = np.array([float(r["score"]) for r in rows])
    options = densekit.BuildOptions(model=model, retriever="dense", cache_dir=None)
    scifact = densekit.evaluate(
        dataset("scifact"), metrics=["nDCG@10", "R@100"], build_options=options
    )
    row = {
        "stsb_spearman": round(float(spearmanr(similarity, gold).statistic), 4),
        "stsb_similarity": similarity.round(6).tolist(),
        "scifact": {m: round(v, 4) for m, v in scifact.metrics.items()},
        "per_query": scifact.per_query,
        "isotropy": isotropy(np.vstack([left, right])),
    }
    print(model, row["stsb_spearman"], row["scifact"], row["isotropy"], flush=True)
    return row


def isotropy(vectors: np.ndarray) -> dict[str, float]:
    """Mean cosine of random pairs, and the first principal component's share of variance."""
    rng = np.random.default_rng(0)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    first, second = rng.integers(0, len(unit), size=(2, 10_000))
    keep = first != second
    values = np.linalg.eigvalsh(np.cov(vectors, rowvar=False))
    return {
        "mean_cosine": round(
            float(np.sum(unit[first[keep]] * unit[second[keep]], axis=1).mean()), 4
        ),
        "first_component_share": round(float(values.max() / values.sum()), 4),
    }


def bootstrap_spearman(base: np.ndarray, other: np.ndarray) -> dict[str, float]:
    """The Spearman difference other - base, with a paired bootstrap over sentence pairs."""
    from scipy.stats import spearmanr

    gold = np.array([float(r["score"]) for r in sts_rows()])
    rng = np.random.default_rng(0)
    observed = spearmanr(other, gold).statistic - spearmanr(base, gold).statistic
    differences = []
    for _ in range(BOOTSTRAP // (10 if QUICK else 1)):
        sample = rng.integers(0, len(gold), len(gold))
        differences.append(
            spearmanr(other[sample], gold[sample]).statistic
            - spearmanr(base[sample], gold[sample]).statistic
        )
    spread = np.array(differences)
    p = 2 * min((spread <= 0).mean(), (spread >= 0).mean())
    return {
        "difference": round(float(observed), 4),
        "interval_95": [round(float(q), 4) for q in np.percentile(spread, [2.5, 97.5])],
        "bootstrap_p": round(float(min(1.0, p)), 4),
    }


def compare() -> None:
    rows = DATA["rows"]
    if "base" not in rows:
        return
    base = rows["base"]
    DATA["tests"] = {
        name: {
            "stsb": bootstrap_spearman(
                np.array(base["stsb_similarity"]), np.array(row["stsb_similarity"])
            ),
            "scifact": paired_tests(base["per_query"], row["per_query"], "nDCG@10"),
        }
        for name, row in rows.items()
        if name != "base"
    }


def disjoint_split() -> Path:
    out = WORK / "scifact-disjoint"
    if not (out / "qrels" / "test.tsv").exists():
        split = split_by_document(load_judged(dataset("scifact"), ["train", "test"]), 0.3, 0)
        write_split(split, out, overwrite=True)
    return out


def as_initialisation() -> dict[str, Any]:
    """Contrastive training from base and from the best DefSent+ model, on a disjoint split."""
    rows = DATA["rows"]
    candidates = [name for name in ISOTROPIES if name in rows]
    if not candidates:
        raise SystemExit("init needs a DefSent+ row first: --parts quasi,init")
    best = max(candidates, key=lambda name: rows[name]["stsb_spearman"])
    split = disjoint_split()
    collection = build_or_open("scifact").directory
    found: dict[str, Any] = {"defsent": best}
    for name, base in (
        ("contrastive", "minilm"),
        (f"{best} + contrastive", trained(best, DATA["pairs"])),
    ):
        out = WORK / f"init-{name.replace(' ', '')}"
        report = train_model(
            split,
            out,
            base=base,
            recipe=CONTRASTIVE,
            collection=collection,
            overwrite=True,
            restart=True,
        )
        options = densekit.BuildOptions(model=str(out), retriever="dense", cache_dir=None)
        test = densekit.evaluate(split, metrics=["nDCG@10", "R@100"], build_options=options)
        found[name] = {
            "metrics": {m: round(v, 4) for m, v in test.metrics.items()},
            "per_query": test.per_query,
            "train_seconds": report.seconds,
        }
        print(name, found[name]["metrics"], flush=True)
    found["test"] = paired_tests(
        found["contrastive"]["per_query"], found[f"{best} + contrastive"]["per_query"], "nDCG@10"
    )
    return found


def save() -> None:
    DATA["environment"] = environment()
    save_json("defsent", DATA)


def plot(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = DATA["rows"]
    names = list(rows)
    figure, axes = plt.subplots(1, 3, figsize=(13, 4))
    panels = (
        ("STS-B test Spearman", lambda r: r["stsb_spearman"]),
        ("SciFact test nDCG@10", lambda r: r["scifact"]["nDCG@10"]),
        ("mean cosine of random sentence pairs", lambda r: r["isotropy"]["mean_cosine"]),
    )
    for axis, (title, value) in zip(axes, panels, strict=True):
        axis.bar(names, [value(rows[name]) for name in names], color="tab:blue")
        axis.set_title(title)
    figure.suptitle(f"DefSent+ on MiniLM ({DATA['pairs']:,} WordNet definitions)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
