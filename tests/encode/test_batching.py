from __future__ import annotations

import numpy as np
from helpers import HashingEncoder

from densekit.encode.batching import encode_documents_sorted


def test_sorted_slices_come_back_in_input_order_with_progress() -> None:
    encoder = HashingEncoder()
    texts = [f"text {'word ' * (i * 7 % 11)} number{i}" for i in range(23)]
    seen: list[int] = []
    vectors = encode_documents_sorted(encoder, texts, slice_size=5, on_progress=seen.append)
    np.testing.assert_allclose(vectors, encoder.encode_documents(texts))
    assert seen == [5, 5, 5, 5, 3]
