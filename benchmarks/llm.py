"""Decoder LLMs as encoders: SmolLM2-135M-Instruct on SciFact, before any training.

    .venv/bin/python benchmarks/llm.py [--max-tokens 256] [--sample 200]

1. SciFact test nDCG@10 and R@100 with `llm:smollm2` as the encoder: causal vs bidirectional
   attention, each with mean, last-token and position-weighted mean pooling (one encoding of
   the corpus per attention mode gives all three poolings). Queries get the generic retrieval
   instruction; documents are read up to --max-tokens tokens. MiniLM is the reference row.
2. Encoding throughput (documents/s) and peak memory (RSS) on the same --sample documents,
   SmolLM2 (bidirectional, mean) vs MiniLM, each in a fresh process on this CPU.

3. With --train: LoRA training on SciFact train on the same budget (steps, batch, one mined
   hard negative per row, learning rate) without and with GRL (weight 1), then the same test
   evaluation; training time. Merged into the JSON of an earlier run.

Writes benchmarks/results/llm.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np
from _common import RESULTS, dataset, environment, write_json

from densekit.corpus import read_corpus
from densekit.encode import load_encoder
from densekit.encode.decoder import POOLINGS
from densekit.evaluate.beir import load_beir
from densekit.evaluate.metrics import compute_metrics

METRICS = ["nDCG@10", "R@100"]


def retrieval(max_tokens: int) -> dict:
    data = load_beir(dataset("scifact"), "test")
    documents = list(read_corpus(dataset("scifact") / "corpus.jsonl"))
    ids = [d.id for d in documents]
    texts = [d.content for d in documents]
    query_ids = list(data.queries)
    queries = [data.queries[q] for q in query_ids]
    rows = {}
    for attention in ("causal", "bidirectional"):
        encoder = load_encoder(f"llm:smollm2#attention={attention}&max_tokens={max_tokens}")
        started = time.perf_counter()
        corpus = encoder.encode_pooled(texts, encoder.spec.document_prompt)
        seconds = time.perf_counter() - started
        asked = encoder.encode_pooled(queries, encoder.spec.query_prompt)
        for pooling in POOLINGS:
            rows[f"{attention}, {pooling}"] = {
                **score(asked[pooling], corpus[pooling], ids, query_ids, data.qrels),
                "corpus_encode_seconds": round(seconds, 1),
            }
            print(attention, pooling, json.dumps(rows[f"{attention}, {pooling}"]), flush=True)
    minilm = load_encoder("minilm")
    rows["minilm (reference)"] = score(
        minilm.encode_queries(queries), minilm.encode_documents(texts), ids, query_ids, data.qrels
    )
    print("minilm", json.dumps(rows["minilm (reference)"]), flush=True)
    return rows


def score(queries: np.ndarray, corpus: np.ndarray, ids, query_ids, qrels) -> dict:
    scores = queries @ corpus.T
    top = np.argsort(-scores, axis=1)[:, :100]
    run = {q: {ids[j]: float(scores[i, j]) for j in top[i]} for i, q in enumerate(query_ids)}
    return {k: round(v, 4) for k, v in compute_metrics(qrels, run, METRICS).aggregate.items()}


def throughput(model: str, sample: int, max_tokens: int) -> dict:
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


def training(max_tokens: int, steps: int, batch: int, learning_rate: float) -> dict:
    from _common import BUILD, build_or_open

    import densekit
    from densekit.train.llm import LlmEncoderTrainer, LlmTraining, LoraSettings
    from densekit.train.pairs import training_examples
    from densekit.train.recipe import DataRecipe

    data = load_beir(dataset("scifact"), "train")
    with densekit.open_collection(build_or_open("scifact").directory) as collection:
        rows = training_examples(data, DataRecipe(negatives=1), collection=collection).rows
    test = load_beir(dataset("scifact"), "test")
    documents = list(read_corpus(dataset("scifact") / "corpus.jsonl"))
    ids, texts = [d.id for d in documents], [d.content for d in documents]
    query_ids = list(test.queries)
    results = {}
    for label, weight in (("LoRA contrastive", 0.0), ("LoRA + GRL", 1.0)):
        settings = LlmTraining(
            batch=batch,
            learning_rate=learning_rate,
            max_steps=steps,
            grl_weight=weight,
            lora=LoraSettings(rank=8),
        )
        trainer = LlmEncoderTrainer(f"llm:smollm2#max_tokens={max_tokens}", settings)
        report = trainer.train(rows)
        model = trainer.save(BUILD / f"llm-{label.split()[-1].lower()}", overwrite=True)
        encoder = load_encoder(model)
        corpus = encoder.encode_documents(texts)
        asked = encoder.encode_queries([test.queries[q] for q in query_ids])
        results[label] = {
            **score(asked, corpus, ids, query_ids, test.qrels),
            "steps": report["steps"],
            "train_seconds": report["seconds"],
            "loss_first": report["loss_first"],
            "loss_last": report["loss_last"],
        }
        print(label, json.dumps(results[label]), flush=True)
    return {
        "budget": {"steps": steps, "batch": batch, "hard_negatives": 1, "lr": learning_rate},
        "rows": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-tokens", type=int, default=256, help="document tokens read")
    parser.add_argument("--sample", type=int, default=200, help="documents for throughput")
    parser.add_argument("--train", action="store_true", help="only the LoRA / GRL training rows")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    if args.train:
        trained = training(args.max_tokens, args.steps, args.batch, args.lr)
        path = RESULTS / "llm.json"  # read now: the main run may have written meanwhile
        results = json.loads(path.read_text()) if path.exists() else {}
        write_json("llm", {**results, "after_training": trained})
        return
    results = {"environment": environment(), "max_tokens": args.max_tokens}
    smollm2 = f"llm:smollm2#max_tokens={args.max_tokens}"
    results["throughput"] = {
        "minilm": throughput("minilm", args.sample, args.max_tokens),
        "smollm2 (bidirectional, mean)": throughput(smollm2, args.sample, args.max_tokens),
    }
    print(json.dumps(results["throughput"]), flush=True)
    write_json("llm", results)
    results["scifact_before_training"] = retrieval(args.max_tokens)
    write_json("llm", results)
    print("wrote benchmarks/results/llm.json")


if __name__ == "__main__":
    main()
