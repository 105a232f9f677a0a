"""A lexical bridge trained through densekit.adapt's public names alone."""

from __future__ import annotations

import numpy as np

from densekit.adapt import AdapterTraining, LexSemBridge, LexSemSpec, QueryTokens, train_lexsem


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_train_lexsem_fits_a_bridge_from_the_package() -> None:
    rng = np.random.default_rng(0)
    documents = unit(rng.normal(size=(40, 16)))
    queries = unit(documents[:20] + rng.normal(scale=0.8, size=(20, 16)))
    tokens = QueryTokens([np.array([row, 20 + row]) for row in range(20)])
    bridge = LexSemBridge(LexSemSpec(), 40, 16, idf=np.ones(40, dtype=np.float32))
    pairs = [(row, row) for row in range(20)]
    report = train_lexsem(queries, tokens, pairs, documents, bridge, AdapterTraining(epochs=30))
    assert report.spec == {"weights": "slr"}
    assert report.loss_last_epoch < report.loss_first_epoch
