from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from densekit.index import LexicalIndex

TEXTS = [
    "The runner was running quickly",
    "Dogs bark at the mailman",
    "A quiet library with many books",
]


def test_stemming_and_stop_words_are_applied(tmp_path: Path) -> None:
    index = LexicalIndex.build(TEXTS)
    [(rows, scores)] = index.search(["runs"], k=3)
    assert rows.tolist() == [0]  # "runs" matches "running"/"runner" through the stemmer
    assert scores[0] > 0
    [(rows, _)] = index.search(["the a with"], k=3)  # only stop words: nothing matches
    assert len(rows) == 0


def test_saved_index_loads_memory_mapped_with_identical_results(tmp_path: Path) -> None:
    index = LexicalIndex.build(TEXTS, k1=1.2, b=0.75)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    for query in ["dogs bark", "library books", "unknownword"]:
        [(a_rows, a_scores)] = index.search([query], k=3)
        [(b_rows, b_scores)] = loaded.search([query], k=3)
        np.testing.assert_array_equal(a_rows, b_rows)
        np.testing.assert_allclose(a_scores, b_scores)


def test_row_mapping_survives_saving_and_maps_results(tmp_path: Path) -> None:
    index = LexicalIndex.build(TEXTS, rows=np.array([3, 7, 9]))
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    [(rows, _)] = loaded.search(["library"], k=3)
    assert rows.tolist() == [9]


@pytest.mark.filterwarnings("error::RuntimeWarning")  # a 0 average length, said quietly
def test_documents_of_stop_words_only_give_an_index_that_matches_nothing(tmp_path: Path) -> None:
    # A corpus (or what a deletion leaves of one) with no word BM25 keeps.
    index = LexicalIndex.build(["the", "a of", ""])
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.documents == 3
    for searched in (index, loaded):
        [(rows, scores)] = searched.search(["the cat"], k=3)
        assert len(rows) == 0 and len(scores) == 0


def test_a_query_s_ceiling_is_the_sum_of_its_indexed_terms_idf() -> None:
    index = LexicalIndex.build(TEXTS)
    documents = len(TEXTS)
    idf_one = np.log1p((documents - 1 + 0.5) / (1 + 0.5))  # a term in one document
    # "dogs" and "bark" are each in one document; an unknown term and stop words add nothing.
    ceilings = index.ceilings(["dogs bark", "dogs dogs", "zebra the", "bark"])
    np.testing.assert_allclose(ceilings, [2 * idf_one, 2 * idf_one, 0.0, idf_one])
    # No document reaches it: BM25's saturating term frequency stays below 1.
    [(rows, scores)] = index.search(["dogs bark"], k=1)
    assert rows.tolist() == [1] and 0 < scores[0] < ceilings[0]


def test_without_a_stemmer_words_match_exactly(tmp_path: Path) -> None:
    from densekit.errors import InputError
    from densekit.index.lexical import check_stemmer

    index = LexicalIndex.build(TEXTS, stemmer="none")
    assert len(index.search(["runs"], k=3)[0][0]) == 0  # "runs" is not "running"
    assert index.search(["running"], k=3)[0][0].tolist() == [0]
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", stemmer="none")
    assert len(loaded.search(["runs"], k=3)[0][0]) == 0
    with pytest.raises(InputError, match=r"unknown BM25 stemmer 'klingon'.*english"):
        check_stemmer("klingon")
