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


# A short document holding a relative of the query's word, or its words apart, outranks the
# longer one holding them as written under classic BM25 (shorter documents score higher).
WORDING = [
    "Key Lime pie",
    "Geneva likes limes, quokkas, tapirs, otters and hydrangeas",
    "Powder for baking",
    "Armand likes baking powder and soap",
]


def test_exact_forms_and_word_pairs_rank_the_query_s_own_wording_first() -> None:
    from densekit.index.lexical import TermWeights

    classic = LexicalIndex.build(WORDING)
    assert [rows[0] for rows, _ in classic.search(["limes", "baking powder"], k=4)] == [0, 2]
    exact = LexicalIndex.build(WORDING, terms=TermWeights(exact=0.25))
    assert exact.search(["limes"], k=4)[0][0][0] == 1
    pairs = LexicalIndex.build(WORDING, terms=TermWeights(pairs=0.25))
    assert pairs.search(["baking powder"], k=4)[0][0][0] == 3


def test_an_extra_term_counts_its_weight_in_scores_and_ceilings(tmp_path: Path) -> None:
    from densekit.index.lexical import TermWeights

    queries = ["limes", "baking powder", "likes baking"]
    indexes = [LexicalIndex.build(WORDING, terms=TermWeights(w, w)) for w in (0.1, 0.2, 0.3)]
    scores = []
    for index in indexes:
        dense = np.zeros((len(queries), len(WORDING)))
        for number, (rows, found) in enumerate(index.search(queries, k=4)):
            dense[number, rows] = found
        scores.append(dense)
        # A weighted term adds at most its weighted IDF: no document passes the ceiling.
        assert (dense <= index.ceilings(queries)[:, None]).all()
    # Only the extra terms' share grows with their weight, in proportion.
    np.testing.assert_allclose(scores[2] - scores[1], scores[1] - scores[0], atol=1e-5)
    assert (scores[1] - scores[0] > 0).any()
    ceilings = [index.ceilings(queries) for index in indexes]
    np.testing.assert_allclose(ceilings[2] - ceilings[1], ceilings[1] - ceilings[0])
    indexes[1].save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", terms=TermWeights(0.2, 0.2))
    for (a_rows, a_scores), (b_rows, b_scores) in zip(
        indexes[1].search(queries, k=4), loaded.search(queries, k=4), strict=True
    ):
        np.testing.assert_array_equal(a_rows, b_rows)
        np.testing.assert_allclose(a_scores, b_scores)
    np.testing.assert_allclose(loaded.ceilings(queries), ceilings[1])


@pytest.mark.parametrize("weights", [(-0.5, 0.0), (0.0, float("nan")), (float("inf"), 0.0)])
def test_a_term_weight_must_be_a_number_of_zero_or_more(weights: tuple[float, float]) -> None:
    from densekit.errors import InputError
    from densekit.index.lexical import TermWeights

    with pytest.raises(InputError, match="give a number >= 0"):
        TermWeights(*weights)
