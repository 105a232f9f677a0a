"""Training an MVP reranker end to end on a tiny dataset with the real MiniLM, and loading it
into a pipeline (another process loads it in tests/cli/test_train_reranker_command.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import judged_hashing_collection
from required import require

from densekit.encode.multiview_folder import load_multiview
from densekit.errors import InputError
from densekit.retrieve import CandidateStage, Pipeline, RerankStage
from densekit.train import MiningConfig, MultiViewTraining, train_reranker

require("datasets")

SMALL = {
    "epochs": 6,
    "batch": 2,
    "negatives": 2,
    "max_length": 64,
    "learning_rate": 3e-4,
    "mining": MiningConfig.window(depth=4, margin=None),
}


def test_trained_mvp_ranks_its_positives_and_loads_into_a_pipeline(
    tiny_beir: Path, tmp_path: Path
) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    out = tmp_path / "mvp"
    settings = MultiViewTraining(views=2, **SMALL)
    report = train_reranker(tiny_beir, collection, out, settings=settings, progress=False)
    assert (report.queries, report.rows, report.positives) == (2, 12, 2)
    card = json.loads((out / "densekit_training.json").read_text())
    assert card["kind"] == "mvp" and card["settings"]["views"] == 2
    assert sorted(p.name for p in out.iterdir()) == [
        "backbone",
        "decoder.safetensors",
        "densekit_training.json",
        "mvp.json",
    ]
    model = load_multiview(out)
    texts = {doc.id: doc.content for doc in collection.documents.get_rows(range(5))}
    # The training queries' positives come first among the documents they were shown.
    for query, positive in (("vitamin D and bones", "d3"), ("loyal dogs", "d2")):
        ids = sorted(texts)
        scores = model.score_list(query, [texts[i] for i in ids])
        assert ids[int(np.argmax(scores))] == positive

    pipeline = Pipeline(
        (CandidateStage("bm25", 5),), rerank=(RerankStage(str(out), kind="mvp", top_n=5),)
    )
    hits = collection.search("loyal dogs", 5, pipeline=pipeline)
    assert hits[0].id == "d2"

    wrong_views = RerankStage(str(out), kind="mvp", top_n=5, views=4)
    with pytest.raises(InputError, match="the model has 2 views, not 4"):
        collection.search(
            "loyal dogs", 5, pipeline=Pipeline((CandidateStage("bm25", 5),), rerank=(wrong_views,))
        )
    with pytest.raises(InputError, match="has 2 views and 1 decoder layers, not 4 and 1"):
        train_reranker(
            tiny_beir,
            collection,
            tmp_path / "again",
            settings=MultiViewTraining(base=str(out), views=4, **SMALL),
            progress=False,
        )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"views": 0}, "views must be a whole number of at least 1"),
        ({"orthogonality": -1.0}, "orthogonality must be >= 0"),
        ({"decoder_learning_rate": 0.0}, "learning rates must be > 0"),
        ({"warmup": 1.0}, "warmup and dev_share must be in [0, 1)"),
    ],
)
def test_bad_mvp_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        MultiViewTraining(**settings)
