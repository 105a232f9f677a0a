"""InfoNCE, its focal form and MoCHi-style mixing, checked against the formulas on tiny tensors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from densekit.errors import InputError
from densekit.train.losses.distillation import (
    Distillation,
    DistillationLoss,
    distillation_loss,
    own_candidate_scores,
)
from densekit.train.losses.info_nce import InfoNCE, info_nce
from densekit.train.losses.mixing import Mixing, hard_negative_mixes


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    return F.normalize(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)), dim=-1)


def test_plain_info_nce_is_cross_entropy_over_in_batch_and_hard_negatives() -> None:
    queries, documents = unit(3, 8), unit(5, 8, seed=1)  # 3 positives + 2 hard negatives
    expected = F.cross_entropy(queries @ documents.T / 0.1, torch.arange(3))
    torch.testing.assert_close(info_nce(queries, documents, temperature=0.1), expected)


def test_focal_form_weights_each_query_by_one_minus_its_probability() -> None:
    queries, documents = unit(4, 8), unit(6, 8, seed=2)
    p = (queries @ documents.T / 0.05).softmax(dim=1)[torch.arange(4), torch.arange(4)]
    expected = (-((1 - p) ** 2) * p.log()).mean()
    focal = info_nce(queries, documents, temperature=0.05, focal_gamma=2.0)
    torch.testing.assert_close(focal, expected)
    assert focal < info_nce(queries, documents, temperature=0.05)


def test_synthetic_negatives_join_each_querys_denominator() -> None:
    queries, documents = unit(2, 8), unit(4, 8, seed=3)
    synthetic = unit(2, 3, 8, seed=4)
    logits = torch.cat([queries @ documents.T, torch.einsum("bd,bsd->bs", queries, synthetic)], 1)
    expected = F.cross_entropy(logits / 0.1, torch.arange(2))
    got = info_nce(queries, documents, temperature=0.1, synthetic=synthetic)
    torch.testing.assert_close(got, expected)
    assert got > info_nce(queries, documents, temperature=0.1)


def test_mixes_are_normalised_hard_and_never_from_the_positive() -> None:
    # Every document shares a common direction with every query: all similarities are positive.
    base = torch.ones(1, 16)
    queries = F.normalize(base + 0.5 * unit(3, 16, seed=5), dim=-1)
    documents = F.normalize(base + 0.8 * unit(10, 16, seed=6), dim=-1)
    documents[:3] = queries  # the positives are the queries themselves: sim 1
    mixing = Mixing(pairs=4, with_query=3, hardest=5)
    mixes = hard_negative_mixes(queries, documents, mixing, torch.Generator().manual_seed(0))
    assert mixes.shape == (3, 7, 16)
    torch.testing.assert_close(mixes.norm(dim=-1), torch.ones(3, 7))
    scores = queries @ documents.T
    scores[torch.arange(3), torch.arange(3)] = -1
    hardest = scores.topk(5, dim=1).values
    similarity = torch.einsum("bd,bsd->bs", queries, mixes)
    assert torch.all(similarity >= hardest.min(dim=1, keepdim=True).values - 1e-5)
    assert torch.all(similarity < 1 - 1e-4)  # never the positive itself


def test_the_loss_module_matches_the_function_and_passes_gradients() -> None:
    loss = InfoNCE(model=None, temperature=0.05, focal_gamma=1.0)
    anchors = torch.randn(3, 8, requires_grad=True)
    columns = [anchors, torch.randn(3, 8), torch.randn(3, 8)]
    value = loss.compute_loss_from_embeddings(columns, None)
    expected = info_nce(
        F.normalize(anchors, dim=-1),
        F.normalize(torch.cat(columns[1:]), dim=-1),
        temperature=0.05,
        focal_gamma=1.0,
    )
    torch.testing.assert_close(value, expected)
    value.backward()
    assert anchors.grad is not None and torch.isfinite(anchors.grad).all()


@pytest.mark.parametrize(
    "settings", [{"pairs": 0, "with_query": 0}, {"hardest": 1}, {"max_query_share": 0.7}]
)
def test_bad_mixing_settings_are_refused(settings: dict) -> None:
    with pytest.raises(InputError, match="mixing"):
        Mixing(**settings)


def test_margin_mse_compares_positive_minus_negative_margins() -> None:
    student = torch.tensor([[0.9, 0.5, 0.1], [0.4, 0.6, 0.0]])
    teacher = torch.tensor([[5.0, 2.0, 1.0], [3.0, 1.0, 2.0]])
    # Student margins in logits (cosines / 0.1), teacher margins / teacher temperature 2.
    expected = torch.tensor([4.0 - 1.5, 8.0 - 2.0, -2.0 - 1.0, 4.0 - 0.5]).pow(2).mean()
    distillation = Distillation("margin-mse", teacher_temperature=2.0)
    got = distillation_loss(student, teacher, distillation, temperature=0.1)
    torch.testing.assert_close(got, expected)


def test_kl_distillation_matches_the_definition() -> None:
    student = torch.tensor([[0.9, 0.5, 0.1]])
    teacher = torch.tensor([[2.0, 1.0, 0.0]])
    p = (teacher / 2.0).softmax(dim=1)
    q = (student / 0.1).softmax(dim=1)
    expected = (p * (p.log() - q.log())).sum()
    got = distillation_loss(student, teacher, Distillation("kl", teacher_temperature=2.0), 0.1)
    torch.testing.assert_close(got, expected)


def test_own_candidates_are_read_column_by_column_and_added_to_the_loss() -> None:
    queries, documents = unit(2, 8), unit(6, 8, seed=7)  # 2 positives, then 2 x 2 negatives
    own = own_candidate_scores(queries, documents)
    for i in range(2):
        expected = torch.stack([queries[i] @ documents[i + 2 * c] for c in range(3)])
        torch.testing.assert_close(own[i], expected)
    teacher = torch.tensor([[3.0, 1.0, 0.0], [2.0, 0.0, 1.0]])
    plain = InfoNCE(model=None, temperature=0.05)
    distilled = DistillationLoss(InfoNCE(model=None, temperature=0.05), Distillation(weight=0.5))
    columns = [queries, documents[:2], documents[2:4], documents[4:]]
    extra = 0.5 * distillation_loss(own, teacher, Distillation(), 0.05)
    torch.testing.assert_close(
        distilled.compute_loss_from_embeddings(columns, teacher),
        plain.compute_loss_from_embeddings(columns, None) + extra,
    )
    with pytest.raises(InputError, match="teacher's scores"):
        distilled.compute_loss_from_embeddings(columns, None)
