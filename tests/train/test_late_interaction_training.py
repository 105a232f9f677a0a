"""Training a late-interaction model end to end on a tiny dataset with the real MiniLM."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import judged_hashing_collection

from densekit.encode.late_interaction import LateInteractionEncoder
from densekit.index.late_interaction import TokenVectors
from densekit.train import MiningConfig
from densekit.train.late_interaction import (
    LateInteractionTraining,
    maxsim_scores,
    train_late_interaction,
)


def test_batched_maxsim_equals_the_stored_index_maxsim() -> None:
    generator = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(3, 5, 16, generator=generator), dim=-1)
    documents = torch.nn.functional.normalize(torch.randn(4, 7, 16, generator=generator), dim=-1)
    kept = torch.ones(4, 7, dtype=torch.bool)
    kept[1, 4:] = False  # a shorter document
    scores = maxsim_scores(queries, torch.ones(3, 5, dtype=torch.bool), documents, kept)
    stored = TokenVectors.from_documents(
        [d[k].numpy() for d, k in zip(documents, kept, strict=True)]
    )
    for number, query in enumerate(queries):
        reference = stored.maxsim(query.numpy(), np.arange(4))
        assert scores[number].numpy() == pytest.approx(reference, abs=0.05)  # int8 storage


def test_a_trained_model_learns_its_queries_and_loads_back(tiny_beir: Path, tmp_path: Path):
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    settings = LateInteractionTraining(
        dimension=32,
        document_tokens=64,
        epochs=6,
        batch=2,
        negatives=1,
        learning_rate=2e-5,
        mining=MiningConfig.window(depth=4, margin=None),
        dev_share=0.0,
    )
    out = tmp_path / "colbert"
    report = train_late_interaction(
        tiny_beir, collection, out, split="train", settings=settings, progress=False
    )
    assert report.queries == 2 and report.steps == 6
    assert np.isfinite([report.loss_first, report.loss_last]).all()
    model = LateInteractionEncoder(str(out))
    assert model.dimension == 32 and model.settings.document_tokens == 64
    # It ranks its training queries' positives first among the tiny corpus.
    texts = [json.loads(line)["text"] for line in (tiny_beir / "corpus.jsonl").open()]
    ids = [json.loads(line)["_id"] for line in (tiny_beir / "corpus.jsonl").open()]
    stored = TokenVectors.from_documents(model.encode_documents(texts))
    for query, relevant in (("loyal dogs", {"d2"}), ("vitamin D and bones", {"d3", "d5"})):
        (vectors,) = model.encode_queries([query])
        assert vectors.shape == (32, 32)
        best = ids[int(np.argmax(stored.maxsim(vectors, np.arange(len(ids)))))]
        assert best in relevant
