"""Training a cross-encoder reranker end to end on a tiny dataset with the real MiniLM."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import judged_hashing_collection
from required import require

from densekit.errors import InputError
from densekit.retrieve import CandidateStage, Pipeline, RerankStage
from densekit.train import MiningConfig, RerankerTraining, train_reranker

require("datasets")


def test_trained_reranker_loads_into_a_pipeline(tiny_beir: Path, tmp_path: Path) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    settings = RerankerTraining(
        epochs=2, batch=4, negatives=2, mining=MiningConfig.window(depth=4, margin=None)
    )
    out = tmp_path / "reranker"
    report = train_reranker(
        tiny_beir, collection, out, split="train", settings=settings, progress=False
    )
    assert (report.queries, report.rows, report.positives) == (2, 4, 2)
    assert report.unknown_documents == 1
    card = json.loads((out / "densekit_training.json").read_text())
    assert card["split"] == "train" and card["settings"]["epochs"] == 2
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


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"epochs": 0}, "epochs must be a whole number of at least 1"),
        ({"negatives": 1.5}, "negatives must be a whole number"),
        ({"learning_rate": 0.0}, "learning_rate must be > 0"),
        ({"dev_share": 1.0}, "dev_share must be in [0, 1)"),
    ],
)
def test_bad_training_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        RerankerTraining(**settings)
