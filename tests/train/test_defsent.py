"""DefSent+ training: isotropic entry targets, the definition loss, and a real training run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import anisotropic

from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.train.defsent import (
    DefSentConfig,
    DefSentTraining,
    isotropic_targets,
    train_defsent,
)
from densekit.train.losses.definitions import DefinitionLoss

ANIMALS = {
    "dog": "a domesticated carnivore kept as a pet that barks",
    "cat": "a small domesticated feline that purrs and hunts mice",
    "salmon": "a large fish that swims upriver to spawn",
    "oak": "a tall tree that bears acorns",
    "rose": "a shrub with thorny stems and fragrant flowers",
    "hammer": "a hand tool with a heavy head for driving nails",
    "violin": "a bowed string instrument played under the chin",
    "bread": "food baked from flour, water and yeast",
    "river": "a large natural stream of water flowing to the sea",
    "mountain": "a land mass that rises high above its surroundings",
    "doctor": "a person licensed to practise medicine",
    "winter": "the coldest season of the year",
}


def mean_cosine(vectors: np.ndarray) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarities = unit @ unit.T
    return float(similarities[~np.eye(len(unit), dtype=bool)].mean())


def test_isotropic_targets_spread_anisotropic_entries() -> None:
    vectors = anisotropic(500, seed=0) + 2.0  # a common direction, as sentence embeddings have
    assert mean_cosine(isotropic_targets(vectors, "off")) > 0.5
    for isotropy in ("quasi", "full"):
        targets = isotropic_targets(vectors, isotropy)
        assert np.allclose(np.linalg.norm(targets, axis=1), 1.0, atol=1e-5)
        assert abs(mean_cosine(targets)) < 0.05
    full = isotropic_targets(vectors, "full")
    shares = np.linalg.eigvalsh(np.cov(full, rowvar=False))
    assert shares.max() / shares.sum() < 2.5 / vectors.shape[1]  # no dominant direction left


class _Given(torch.nn.Module):
    """A stand-in model whose embeddings are the features' own vectors."""

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": features["vectors"]}


def test_rows_of_the_same_entry_or_definition_are_not_negatives() -> None:
    torch.manual_seed(0)
    sentences = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    targets = torch.randn(3, 8)
    # Rows 1 and 2 define entry 1 (two senses); rows 0 and 3 share a definition (synonyms).
    labels = torch.tensor([[0, 0], [1, 1], [1, 2], [2, 0]])
    loss = DefinitionLoss(_Given(), targets, temperature=0.1)([{"vectors": sentences}], labels)
    unit = torch.nn.functional.normalize(targets, dim=-1)[labels[:, 0]]
    logits = sentences @ unit.T / 0.1
    kept = ([0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3])
    expected = -torch.stack(
        [torch.log_softmax(logits[i, list(k)], 0)[list(k).index(i)] for i, k in enumerate(kept)]
    ).mean()
    assert torch.isclose(loss, expected, atol=1e-6)


def entry_margin(model: str | Path, targets: np.ndarray) -> float:
    """Mean cosine of each definition to its own entry's target, less that to the others'."""
    definitions = load_encoder(str(model)).encode_documents(list(ANIMALS.values()))
    similarities = definitions @ targets.T
    own = np.eye(len(ANIMALS), dtype=bool)
    return float(similarities[own].mean() - similarities[~own].mean())


def test_definitions_learn_to_find_their_entries(tmp_path: Path) -> None:
    dictionary = tmp_path / "animals.tsv"
    dictionary.write_text("".join(f"{e}\t{d}\n" for e, d in ANIMALS.items()))
    settings = DefSentTraining(batch=6, epochs=8, learning_rate=2e-4, isotropy="full")
    report = train_defsent(
        DefSentConfig(tmp_path / "m", dictionary, settings=settings, progress=False)
    )
    assert (report.pairs, report.entries, report.steps) == (12, 12, 16)
    base = load_encoder("minilm")
    targets = isotropic_targets(base.encode_documents(list(ANIMALS)), "full")
    assert entry_margin(tmp_path / "m", targets) > entry_margin("minilm", targets) + 0.1
    assert not (tmp_path / ".m.checkpoints").exists()


def test_bad_dictionaries_and_settings_are_refused(tmp_path: Path) -> None:
    small = tmp_path / "small.tsv"
    small.write_text("dog\ta pet\ncat\tanother pet\n")
    with pytest.raises(InputError, match="2 distinct entries, fewer than the batch of 64"):
        train_defsent(DefSentConfig(tmp_path / "m", small))
    with pytest.raises(InputError, match="apt-get install wordnet-base"):
        train_defsent(DefSentConfig(tmp_path / "m", wordnet=tmp_path))
    with pytest.raises(InputError, match="isotropy must be one of quasi, full, off"):
        DefSentTraining(isotropy="round")
    with pytest.raises(InputError, match="batch must be at least 2"):
        DefSentTraining(batch=1)
    assert not (tmp_path / "m").exists()
