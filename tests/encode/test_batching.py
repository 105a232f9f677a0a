from __future__ import annotations

import numpy as np
from helpers import HashingEncoder

from densekit.encode.batching import encode_documents_sorted


def test_sorted_slices_come_back_in_input_order_with_progress() -> None:
    encoder = HashingEncoder()
    texts = [f"text {'word ' * (i * 7 % 11)} number{i}" for i in range(23)]
    lengths = encoder.token_lengths(texts)
    seen: list[tuple[int, int]] = []
    vectors = encode_documents_sorted(
        encoder,
        texts,
        slice_tokens=40,
        on_progress=lambda done, tokens: seen.append((done, tokens)),
        token_lengths=lengths,
    )
    np.testing.assert_allclose(vectors, encoder.encode_documents(texts))
    # Slices of about 40 padded tokens: the bar moves many times, and counts every text and
    # every token the model reads once.
    assert len(seen) > 3
    assert sum(done for done, _ in seen) == len(texts)
    assert sum(tokens for _, tokens in seen) == sum(min(n, encoder.max_tokens) for n in lengths)


def test_token_budget_batches_cover_every_row_once_within_budget() -> None:
    from densekit.encode.batching import token_budget_batches

    lengths = [300, 5, 40, 40, 1000, 12, 7, 256, 3]
    batches = token_budget_batches(lengths, max_tokens=256, budget=512, max_batch=4)
    rows = np.concatenate(batches)
    assert sorted(rows.tolist()) == list(range(len(lengths)))
    for batch in batches:
        padded = len(batch) * min(256, max(lengths[i] for i in batch))
        assert padded <= 512 or len(batch) == 1
        assert len(batch) <= 4
    assert [lengths[i] for i in batches[0]] in ([1000, 300], [300, 1000])  # longest first
