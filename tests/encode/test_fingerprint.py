from __future__ import annotations

import torch

from densekit.encode.fingerprint import settings_digest, weights_digest


def test_large_tensors_are_sampled_and_still_sensitive_to_changes() -> None:
    big = torch.zeros(30527 * 768)  # mpnet's word embeddings: past the full-hash size
    digest = weights_digest([("embeddings", big)])
    changed = big.clone()
    changed[0] = 1.0  # the first element is always in the sample
    assert weights_digest([("embeddings", changed)]) != digest


def test_order_names_shapes_and_settings_all_count() -> None:
    a, b = torch.ones(3), torch.zeros(3)
    assert weights_digest([("a", a), ("b", b)]) == weights_digest([("b", b), ("a", a)])
    assert weights_digest([("a", a)]) != weights_digest([("c", a)])
    assert weights_digest([("a", a)]) != weights_digest([("a", a.reshape(1, 3))])
    weights = weights_digest([("a", a)])
    assert settings_digest(weights, {"prompt": ""}) != settings_digest(weights, {"prompt": "q: "})
