"""The sparse inverted index against a brute-force dot product, tombstones, saving."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import random as sparse_random

from densekit.index.sparse import SparseIndex


def test_search_equals_the_dot_product_and_survives_saving(tmp_path: Path) -> None:
    documents = sparse_random(
        200, 500, density=0.03, format="csr", random_state=0, dtype=np.float32
    )
    queries = sparse_random(6, 500, density=0.02, format="csr", random_state=1, dtype=np.float32)
    index = SparseIndex.from_documents(documents)
    index.save(tmp_path / "sparse")
    loaded = SparseIndex.load(tmp_path / "sparse")
    exact = (queries @ documents.T).toarray()
    for q, ((rows, scores), (rows2, _)) in enumerate(
        zip(index.search(queries, 10), loaded.search(queries, 10), strict=True)
    ):
        expected = np.argsort(-exact[q], kind="stable")[: len(rows)]
        np.testing.assert_allclose(scores, exact[q][expected], rtol=1e-5)
        assert (scores > 0).all() and rows.tolist() == rows2.tolist()
    assert (loaded.document_vectors() != documents).nnz == 0


def test_deleted_rows_never_rank() -> None:
    documents = sparse_random(50, 80, density=0.2, format="csr", random_state=2, dtype=np.float32)
    deleted = np.zeros(50, dtype=bool)
    deleted[::2] = True
    index = SparseIndex(SparseIndex.from_documents(documents).postings, deleted)
    query = sparse_random(1, 80, density=0.3, format="csr", random_state=3, dtype=np.float32)
    rows, _ = index.search(query, 50)[0]
    assert len(rows) > 0 and not deleted[rows].any()
