"""Decoder LLMs as encoders: SmolLM2-135M-Instruct on SciFact, before and after LoRA training.

    .venv/bin/python benchmarks/llm.py [--only throughput|before|train] [--max-tokens 128]
                                       [--sample 200] [--steps 40 --batch 4 --lr 1e-3]
                                       [--negatives 1] [--objectives contrastive,grl,...] [--fresh]

1. throughput: encoding documents/s and peak memory (RSS) on --sample SciFact documents read
   up to 256 tokens, SmolLM2 (bidirectional, mean) vs MiniLM, each in a fresh process.
2. before: SciFact test nDCG@10 and R@100 with `llm:smollm2` untrained: causal vs bidirectional
   attention, each with mean, last-token and position-weighted mean pooling (one encoding of the
   corpus per attention mode gives all three poolings). Queries get the generic retrieval
   instruction; documents are read up to --max-tokens tokens. MiniLM is the reference row.
3. train: LoRA training of the bidirectional, mean-pooled encoder on SciFact train on one budget
   (steps, batch, --negatives mined hard negatives per row, learning rate): contrastive only,
   + GRL (weight 1) with the generation target at τ_gen 1 and 0.25, optionally + DPO
   (--objectives), then the same test evaluation; training time and losses.

Every row is written to benchmarks/results/llm.json as soon as it is measured; a rerun keeps
the rows already measured with the same settings (--fresh measures them again), so an
interrupted run resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from _common import (
    BUILD,
    QUICK,
    RESULTS,
    build_or_open,
    dataset,
    environment,
    paired_tests,
    write_json,
)

from densekit.corpus import read_corpus
from densekit.encode import load_encoder
from densekit.encode.decoder import POOLINGS
from densekit.evaluate.beir import load_beir
from densekit.evaluate.metrics import compute_metrics

METRICS = ["nDCG@10", "R@100"]
PAIRED_MEASURE = "nDCG@10"
THROUGHPUT_TOKENS = 256
# Training objectives on one budget: (row label, LlmTraining settings).
OBJECTIVES: dict[str, tuple[str, dict[str, float]]] = {
    "contrastive": ("LoRA contrastive", {}),
    "grl": ("LoRA + GRL", {"grl_weight": 1.0}),
    "grl-sharp": ("LoRA + GRL (τ_gen 0.25)", {"grl_weight": 1.0, "grl_temperature": 0.25}),
    "grl-dpo": (
        "LoRA + GRL (τ_gen 0.25) + DPO",
        {"grl_weight": 1.0, "grl_temperature": 0.25, "dpo_weight": 1.0},
    ),
}


@dataclass
class Section:
    """One part of llm.json: its settings, the environment it was measured in, and its rows.
    Rows survive a rerun only while the settings hold; each is merged into the file as it
    stands when written (another run of this script may have written other parts meanwhile)."""

    name: str
    content: dict[str, Any]

    @classmethod
    def open(cls, name: str, settings: dict[str, Any], fresh: bool) -> Section:
        kept = _read_results().get(name)
        if fresh or not isinstance(kept, dict) or kept.get("settings") != settings:
            kept = {"settings": settings, "environment": environment(), "rows": {}}
        section = cls(name, kept)
        section.save()
        return section

    @property
    def rows(self) -> dict[str, Any]:
        return self.content["rows"]

    def row(self, label: str, measure: Callable[[], dict]) -> None:
        if label in self.rows:
            print(f"{label}: kept {json.dumps(self.rows[label])}", flush=True)
            return
        self.record(label, measure())

    def record(self, label: str, value: dict) -> None:
        # Rows kept from earlier runs sit beside new ones: each says when it was measured.
        value = {**value, "measured": time.strftime("%Y-%m-%d")}
        self.rows[label] = value
        shown = {k: v for k, v in value.items() if k != "per_query"}
        print(f"{label}: {json.dumps(shown)}", flush=True)
        self.save()

    def save(self) -> None:
        write_json("llm", {**_read_results(), self.name: self.content})


def _read_results() -> dict[str, Any]:
    path = RESULTS / "llm.json"
    return json.loads(path.read_text()) if path.exists() else {}


class SciFactTest:
    def __init__(self) -> None:
        self.data = load_beir(dataset("scifact"), "test")
        documents = list(read_corpus(dataset("scifact") / "corpus.jsonl"))
        self.ids = [d.id for d in documents]
        self.texts = [d.content for d in documents]
        self.query_ids = list(self.data.queries)
        self.queries = [self.data.queries[q] for q in self.query_ids]

    def score(self, queries: np.ndarray, corpus: np.ndarray) -> dict[str, float]:
        scores = queries @ corpus.T
        top = np.argsort(-scores, axis=1)[:, :100]
        run = {
            q: {self.ids[j]: float(scores[i, j]) for j in top[i]}
            for i, q in enumerate(self.query_ids)
        }
        result = compute_metrics(self.data.qrels, run, METRICS)
        # Per query, for paired significance tests between rows.
        per_query = {q: round(v[PAIRED_MEASURE], 4) for q, v in result.per_query.items()}
        return {**{k: round(v, 4) for k, v in result.aggregate.items()}, "per_query": per_query}

    def evaluate(self, model: str) -> dict[str, float]:
        encoder = load_encoder(model)
        started = time.perf_counter()
        corpus = encoder.encode_documents(self.texts)
        seconds = time.perf_counter() - started
        return {
            **self.score(encoder.encode_queries(self.queries), corpus),
            "corpus_encode_seconds": round(seconds, 1),
        }


def throughput(model: str, sample: int) -> dict:
    """Documents/s and peak RSS of encoding ``sample`` documents, in a fresh process."""
    corpus = str(dataset("scifact") / "corpus.jsonl")
    code = f"""
import json, resource, time
from densekit.corpus import read_corpus
from densekit.encode import load_encoder
texts = [d.content for _, d in zip(range({sample}), read_corpus({corpus!r}))]
encoder = load_encoder({model!r})
encoder.encode_documents(texts[:8])
started = time.perf_counter()
encoder.encode_documents(texts)
seconds = time.perf_counter() - started
print(json.dumps({{"documents_per_second": round(len(texts) / seconds, 2),
    "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}}))
"""
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_throughput(sample: int, fresh: bool) -> None:
    settings = {"max_tokens": THROUGHPUT_TOKENS, "sample": sample}
    section = Section.open("throughput", settings, fresh)
    smollm2 = f"llm:smollm2#max_tokens={THROUGHPUT_TOKENS}"
    section.row("minilm", lambda: throughput("minilm", sample))
    section.row("smollm2 (bidirectional, mean)", lambda: throughput(smollm2, sample))


def measure_before_training(max_tokens: int, fresh: bool) -> None:
    section = Section.open("scifact_before_training", {"max_tokens": max_tokens}, fresh)
    test = SciFactTest()
    for attention in ("causal", "bidirectional"):
        labels = [f"{attention}, {pooling}" for pooling in POOLINGS]
        if all(label in section.rows for label in labels):
            continue
        encoder = load_encoder(f"llm:smollm2#attention={attention}&max_tokens={max_tokens}")
        started = time.perf_counter()
        corpus = encoder.encode_pooled(test.texts, encoder.spec.document_prompt)
        seconds = round(time.perf_counter() - started, 1)
        asked = encoder.encode_pooled(test.queries, encoder.spec.query_prompt)
        for pooling, label in zip(POOLINGS, labels, strict=True):
            scores = test.score(asked[pooling], corpus[pooling])
            section.record(label, {**scores, "corpus_encode_seconds": seconds})
    section.row("minilm (reference)", lambda: test.evaluate("minilm"))


def measure_training(
    max_tokens: int,
    steps: int,
    batch: int,
    learning_rate: float,
    negatives: int,
    objectives: list[str],
    fresh: bool,
) -> None:
    import densekit
    from densekit.train.llm_trainer import LlmEncoderTrainer, LlmTraining, LoraSettings
    from densekit.train.mining import MiningConfig as DataRecipe
    from densekit.train.pairs import training_examples

    budget = {
        "base": f"llm:smollm2#max_tokens={max_tokens}",
        "steps": steps,
        "batch": batch,
        "lr": learning_rate,
        "lora_rank": 8,
    }
    section = Section.open("after_training", budget, fresh)
    suffix = f", {negatives} hard negative" + ("s" if negatives > 1 else "")
    wanted = {OBJECTIVES[name][0] + suffix: name for name in objectives}
    if all(label in section.rows for label in wanted):
        return
    train = load_beir(dataset("scifact"), "train")
    with densekit.open_collection(build_or_open("scifact").directory) as collection:
        recipe = DataRecipe(negatives=negatives)
        examples = training_examples(train, recipe, collection=collection).rows
    test = SciFactTest()

    def trained(objective: str) -> dict:
        settings = LlmTraining(
            batch=batch,
            learning_rate=learning_rate,
            max_steps=steps,
            lora=LoraSettings(rank=8),
            **OBJECTIVES[objective][1],
        )
        trainer = LlmEncoderTrainer(budget["base"], settings)
        report = trainer.train(examples)
        model = trainer.save(BUILD / f"llm-{objective}-{negatives}", overwrite=True)
        return {
            **test.evaluate(model),
            "hard_negatives": negatives,
            **OBJECTIVES[objective][1],
            "steps": report["steps"],
            "train_seconds": report["seconds"],
            "loss_first": report["loss_first"],
            "loss_last": report["loss_last"],
        }

    for label, objective in wanted.items():
        section.row(label, lambda o=objective: trained(o))
    compare_objectives(section)


def compare_objectives(section: Section) -> None:
    """Each objective against contrastive-only with as many hard negatives: a paired t-test
    and randomisation test on per-query nDCG@10."""
    comparisons = {}
    for label, row in section.rows.items():
        negatives = row.get("hard_negatives")
        base = next(
            (
                other
                for name, other in section.rows.items()
                if name.startswith(OBJECTIVES["contrastive"][0])
                and other.get("hard_negatives") == negatives
            ),
            None,
        )
        if base is None or base is row or "per_query" not in row or "per_query" not in base:
            continue
        tested = {q: {PAIRED_MEASURE: v} for q, v in row["per_query"].items()}
        reference = {q: {PAIRED_MEASURE: v} for q, v in base["per_query"].items()}
        comparisons[label] = paired_tests(reference, tested, PAIRED_MEASURE)
        print(f"{label} vs contrastive: {json.dumps(comparisons[label])}", flush=True)
    section.content["paired_tests_vs_contrastive"] = comparisons
    section.save()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", choices=["throughput", "before", "train"], action="append")
    # QUICK: short reads, two steps and two objectives: every code path, in a few minutes.
    parser.add_argument(
        "--max-tokens", type=int, default=32 if QUICK else 128, help="document tokens read"
    )
    parser.add_argument(
        "--sample", type=int, default=20 if QUICK else 200, help="documents for throughput"
    )
    parser.add_argument("--steps", type=int, default=2 if QUICK else 40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--negatives", type=int, default=1, help="mined hard negatives per row")
    parser.add_argument(
        "--objectives",
        default="contrastive,grl" if QUICK else "contrastive,grl,grl-sharp",
        help=f"comma-separated, of {', '.join(OBJECTIVES)}",
    )
    parser.add_argument("--fresh", action="store_true", help="measure kept rows again")
    args = parser.parse_args()
    parts = args.only or ["throughput", "before", "train"]
    if "throughput" in parts:
        measure_throughput(args.sample, args.fresh)
    if "before" in parts:
        measure_before_training(args.max_tokens, args.fresh)
    if "train" in parts:
        objectives = [name.strip() for name in args.objectives.split(",") if name.strip()]
        unknown = [name for name in objectives if name not in OBJECTIVES]
        if unknown:
            parser.error(f"unknown objective {', '.join(unknown)}; known: {', '.join(OBJECTIVES)}")
        measure_training(
            args.max_tokens, args.steps, args.batch, args.lr, args.negatives, objectives, args.fresh
        )
    print("wrote benchmarks/results/llm.json")


if __name__ == "__main__":
    main()
