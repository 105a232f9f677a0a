"""Where single vectors break: the LIMIT paper's experiments (Weller et al., "On the Theoretical
Limitations of Embedding-Based Retrieval").

    .venv/bin/python benchmarks/limits.py [--parts free_embedding,sign_rank,limit]
                                          [--dims 4,8,...] [--device auto] [--report-only]

- free_embedding: `densekit limits free-embedding --k 2` with the paper's protocol (Adam, lr
  0.01, temperature 0.1, up to 100,000 steps, patience 1,000): the critical n of each d, beside
  the paper's cubic fit (n = -10.5322 + 4.0309 d + 0.0520 d^2 + 0.0037 d^3), and the cubic fit
  of the measured points. Every run is kept under build/benchmarks/limits-free-embedding, so an
  interrupted run resumes; the dimensions measured so far are reported, and a dimension whose
  search is unfinished by the bounds its runs give (`at_least`, `below`). `--report-only`
  writes that from the kept runs without running any.
- sign_rank: `densekit limits sign-rank` of the published LIMIT-small qrels and of densekit's
  generated small set (`densekit make-queries --task limit`, seed 0): Forster's lower bound and
  the smallest d free vectors fit exactly.
- limit: R@2 and R@10 of dense (MiniLM), BM25, the hybrid default and multi-vector on the
  published LIMIT-small and on the generated small set, which must fail single vectors the
  same way. The multi-vector model is trained from MiniLM (`densekit train --loss colbert`)
  on a generated training set of its own (seed 1, `--split train`), never on either test set;
  the shared set's queries are also scored apart by whether the thing they ask about occurs
  among the training set's (the people and their pairs never do).

Writes benchmarks/results/limits.json and limits.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from _common import BUILD, QUICK, RESULTS, dataset, environment, write_json

import densekit
from densekit.evaluate.limits import FitSettings, paper_critical_n, run_experiment
from densekit.evaluate.limits.dataset import LimitSpec, write_limit_dataset
from densekit.evaluate.limits.experiment import plot, resolve_device
from densekit.evaluate.limits.sign_rank import dimension_bounds, read_relevance
from densekit.train.late_interaction import LateInteractionTraining, train_late_interaction

DIMS = "4,8" if QUICK else "4,8,12,16,20,24,28,32"
# QUICK: short runs, to check the script; the critical n it finds is not the paper's.
SETTINGS = FitSettings(max_steps=2000) if QUICK else FitSettings()
RETRIEVERS = ("dense", "bm25", "hybrid", "multivector")
# The multi-vector model's training set and training (QUICK: a short run, to check the script).
TRAIN_SET = LimitSpec(seed=1, queries=100 if QUICK else 1000)
COLBERT = LateInteractionTraining(epochs=1 if QUICK else 2, learning_rate=2e-5)


def generated_small_set() -> Any:
    out = BUILD / "limit-generated-small"
    if not (out / "qrels" / "test.tsv").exists():
        write_limit_dataset(LimitSpec(seed=0), out, overwrite=True)
    return out


def free_embedding(dims: list[int], device: str, save: Any, report_only: bool) -> dict[str, Any]:
    """One dimension at a time, the results and plot saved after each (a long run shows its
    progress, and resumes from its kept runs); every dimension the folder holds is reported.
    ``report_only``: report the kept runs (a search under way by the bounds its runs give),
    running none."""
    if report_only:
        kept = BUILD / "limits-free-embedding" / "free_embedding.json"
        found = summary(json.loads(kept.read_text(encoding="utf-8")))
        save(found)
        return found
    found: dict[str, Any] = {}
    for d in dims:
        record = run_experiment([d], 2, BUILD / "limits-free-embedding", SETTINGS, device)
        plot(record, RESULTS / "limits.png")
        found = summary(record)
        save(found)
    return found


def summary(record: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for d, entry in sorted(record["dims"].items(), key=lambda item: int(item[0])):
        critical = entry.get("critical_n")
        paper = paper_critical_n(int(d))
        if critical is None:  # a search still under way (or stopped): what its runs bound
            solved = [int(n) for n, run in entry["runs"].items() if run["solved"]]
            failed = [int(n) for n, run in entry["runs"].items() if not run["solved"]]
            if solved:
                rows[d] = {
                    "critical_n": None,
                    "at_least": max(solved),
                    "below": min((n for n in failed if n > max(solved)), default=None),
                    "paper_fit": round(paper, 1),
                    "at_least_ratio_to_paper": round(max(solved) / paper, 3),
                    "runs": len(entry["runs"]),
                    "seconds": round(sum(run["seconds"] for run in entry["runs"].values()), 1),
                }
            continue
        rows[d] = {
            "critical_n": critical,
            "paper_fit": round(paper, 1),
            "ratio_to_paper": round(critical / paper, 3),
            "within_10_percent": abs(critical / paper - 1) <= 0.10,
            "runs": len(entry["runs"]),
            "seconds": round(sum(run["seconds"] for run in entry["runs"].values()), 1),
        }
    return {
        "k": 2,
        "settings": dataclasses.asdict(SETTINGS),
        "dims": rows,
        "cubic_fit": record.get("fit"),
        "paper_fit": record["paper_fit"],
    }


def sign_rank(device: str) -> dict[str, Any]:
    settings = FitSettings(max_steps=2000 if QUICK else 20_000)
    found = {}
    for name, folder in (
        ("limit-small", dataset("limit-small")),
        ("generated-small", generated_small_set()),
    ):
        relevance = read_relevance(folder / "qrels" / "test.tsv")
        bounds = dimension_bounds(relevance, settings, device)
        found[name] = {
            "queries": len(relevance.queries),
            "documents": len(relevance.documents),
            "lower": bounds.lower,
            "upper": bounds.upper,
            "upper_fitted": bounds.fitted,
            "optimiser_failed_at": bounds.failed,
            "tried": {d: r.accuracy for d, r in sorted(bounds.tried.items())},
        }
        print(name, json.dumps(found[name]), flush=True)
    return {"max_steps": settings.max_steps, "sets": found}


def limit_model() -> tuple[Any, dict[str, Any]]:
    """A late-interaction model trained on a generated LIMIT training set (seed 1)."""
    train_set = BUILD / "limit-generated-train"
    if not (train_set / "qrels" / "train.tsv").exists():
        write_limit_dataset(TRAIN_SET, train_set, overwrite=True, split="train")
    mining = densekit.build_collection(
        train_set / "corpus.jsonl",
        BUILD / "limit-generated-train-minilm",
        densekit.BuildOptions(model="minilm", retriever="hybrid", cache_dir=None),
        overwrite=True,
    )
    out = BUILD / "models" / "limit-colbert"
    report = train_late_interaction(train_set, mining, out, settings=COLBERT, overwrite=True)
    print(report.summary()[0], flush=True)
    return out, dataclasses.asdict(report)


def limit() -> dict[str, Any]:
    model, training = limit_model()
    options = densekit.BuildOptions(
        model="minilm", retriever="hybrid", multivector=str(model), cache_dir=None
    )
    found = {}
    for name, folder in (
        ("limit-small", dataset("limit-small")),
        ("generated-small", generated_small_set()),
    ):
        out = BUILD / f"limits-{name}-minilm"
        with densekit.build_collection(
            folder / "corpus.jsonl", out, options, overwrite=True
        ) as collection:
            data = densekit.load_beir(folder, "test")
            reports = {
                retriever: densekit.evaluate(
                    data, collection=collection, retriever=retriever, metrics=["R@2", "R@10"]
                )
                for retriever in RETRIEVERS
            }
            found[name] = {
                retriever: {m: round(v, 4) for m, v in report.metrics.items()}
                for retriever, report in reports.items()
            }
            if name == "limit-small":
                found[name]["multivector_by_trained_thing"] = by_trained_thing(
                    data, reports["multivector"].per_query
                )
        print(name, json.dumps(found[name]), flush=True)
    return {"model": "minilm", "multivector_training": training, "sets": found}


def by_trained_thing(data: Any, per_query: dict[str, dict[str, float]]) -> dict[str, Any]:
    """R@2 of the queries whose text a training query shares ("Who likes X?" with the same
    X), and of the others."""
    trained = set(densekit.load_beir(BUILD / "limit-generated-train", "train").queries.values())
    groups: dict[str, list[float]] = {"asked_in_training": [], "not_asked": []}
    for query_id, scores in per_query.items():
        seen = data.queries[query_id] in trained
        groups["asked_in_training" if seen else "not_asked"].append(scores["R@2"])
    return {
        group: {"queries": len(values), "R@2": round(sum(values) / max(1, len(values)), 4)}
        for group, values in groups.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", default="free_embedding,sign_rank,limit")
    parser.add_argument("--dims", default=DIMS, help="dimensions for free_embedding")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write what free_embedding's kept runs show, running nothing (and no other part)",
    )
    args = parser.parse_args()
    device = resolve_device(args.device)
    BUILD.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "limits.json"
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    dims = [int(d) for d in args.dims.split(",") if d.strip()]

    def save(name: str, section: dict[str, Any]) -> None:
        data[name] = {**section, "device": device, "environment": environment()}
        write_json("limits", data)

    parts = {
        "free_embedding": lambda: free_embedding(
            dims, device, lambda section: save("free_embedding", section), args.report_only
        ),
        "sign_rank": lambda: sign_rank(device),
        "limit": limit,
    }
    # A report measures nothing: the other parts would run their experiments again.
    chosen = ["free_embedding"] if args.report_only else filter(None, args.parts.split(","))
    for name in chosen:
        save(name, parts[name]())


if __name__ == "__main__":
    main()
