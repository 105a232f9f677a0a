"""Encode many texts in length-sorted slices, reporting progress after each slice.

Sorting a large block by length keeps padding low (what sentence-transformers does inside one
``encode`` call); slicing it lets a progress bar move while the block is being encoded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from densekit.encode.base import Encoder


def encode_documents_sorted(
    encoder: Encoder,
    texts: Sequence[str],
    *,
    slice_size: int = 256,
    on_progress: Callable[[int], object] | None = None,
) -> np.ndarray:
    """The document vectors of ``texts``, in their original order."""
    order = np.argsort([-len(text) for text in texts], kind="stable")
    vectors = np.empty((len(texts), encoder.dimension), dtype=np.float32)
    for start in range(0, len(order), slice_size):
        rows = order[start : start + slice_size]
        vectors[rows] = encoder.encode_documents([texts[i] for i in rows])
        if on_progress is not None:
            on_progress(len(rows))
    return vectors
