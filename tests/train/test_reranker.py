"""Training a cross-encoder reranker end to end on a tiny dataset with the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import HashingEncoder

from densekit.errors import InputError
from densekit.retrieve import CandidateStage, Pipeline, RerankStage
from densekit.store import BuildOptions, build_collection
from densekit.train import MiningConfig, RerankerTraining, train_reranker

pytest.importorskip("datasets")


def test_trained_reranker_loads_into_a_pipeline(tiny_beir: Path, tmp_path: Path) -> None:
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\nq2\tgone\t1\n", encoding="utf-8"
    )
    collection = build_collection(
        tiny_beir / "corpus.jsonl",
        tmp_path / "c",
        BuildOptions(progress=False, cache_dir=None),
        encoder=HashingEncoder(),
    )
    collection.use_encoder(HashingEncoder())
    settings = RerankerTraining(epochs=1, batch=4, mining=MiningConfig(per_query=2, depth=4))
    out = tmp_path / "reranker"
    report = train_reranker(
        tiny_beir, collection, out, split="train", settings=settings, progress=False
    )
    assert (report.queries, report.positives, report.negatives) == (2, 2, 4)
    assert report.unknown_documents == 1
    card = json.loads((out / "densekit_training.json").read_text())
    assert card["split"] == "train" and card["settings"]["epochs"] == 1
    pipeline = Pipeline((CandidateStage("bm25", 5),), rerank=(RerankStage(str(out), top_n=5),))
    assert collection.search("loyal dogs", 2, pipeline=pipeline)

    with pytest.raises(InputError, match="pass --overwrite"):
        train_reranker(tiny_beir, collection, out, split="train", settings=settings)
    with pytest.raises(InputError, match="no test query has a relevant document"):
        empty = tmp_path / "other"
        empty.mkdir()
        (tiny_beir / "qrels" / "test.tsv").write_text(
            "query-id\tcorpus-id\tscore\nq1\tnope\t1\n", encoding="utf-8"
        )
        train_reranker(tiny_beir, collection, empty, split="test", settings=settings)
