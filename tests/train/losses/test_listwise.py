"""The listwise hard-negative loss: -log softmax over (positive, negatives) of raw logits."""

from __future__ import annotations

import pytest
import torch

from densekit.encode import resolve_model
from densekit.train.losses.listwise import HardNegativeSoftmaxLoss
from densekit.train.reranker import mean_pooled_cross_encoder

QUERIES = ["vitamin d and bone density", "loyal dogs"]
POSITIVES = ["Vitamin D supplements raise bone density.", "Dogs are loyal companions."]
NEGATIVES = [["Salmon swim upstream.", "Taxes rose."], ["Rivers freeze.", "Cats sleep a lot."]]


@pytest.fixture(scope="module")
def model():
    model = mean_pooled_cross_encoder(resolve_model("minilm").location, 64)
    model.eval()  # no dropout: the loss and the hand computation see the same logits
    return model


def logits(model, pairs: list[tuple[str, str]]) -> torch.Tensor:
    features = model.preprocess(pairs)
    return model(features)["scores"].view(-1)


def test_the_loss_is_softmax_cross_entropy_over_each_querys_own_candidates(model) -> None:
    columns = [QUERIES, POSITIVES, *(list(column) for column in zip(*NEGATIVES, strict=True))]
    with torch.no_grad():
        loss = HardNegativeSoftmaxLoss(model)(columns, None)
        expected = []
        for query, positive, negatives in zip(QUERIES, POSITIVES, NEGATIVES, strict=True):
            scores = logits(model, [(query, p) for p in (positive, *negatives)])
            expected.append(-torch.log_softmax(scores, dim=0)[0])
    torch.testing.assert_close(loss, torch.stack(expected).mean(), rtol=1e-5, atol=1e-5)


def test_the_head_gives_raw_logits_that_the_saved_model_keeps(model, tmp_path) -> None:
    pairs = [(QUERIES[0], POSITIVES[0]), (QUERIES[0], NEGATIVES[0][0])]
    with torch.no_grad():
        raw = logits(model, pairs).numpy()
    torch.testing.assert_close(torch.tensor(model.predict(pairs)), torch.tensor(raw))
    from sentence_transformers import CrossEncoder

    model.save_pretrained(str(tmp_path / "m"))
    loaded = CrossEncoder(str(tmp_path / "m"), device="cpu")
    torch.testing.assert_close(torch.tensor(loaded.predict(pairs)), torch.tensor(raw))
