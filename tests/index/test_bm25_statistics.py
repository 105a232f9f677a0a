from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from densekit.errors import CollectionError
from densekit.index import LexicalIndex
from densekit.index.bm25_statistics import STATISTICS_FILE, CorpusStatistics
from densekit.index.lexical import HYBRID_TERMS, TermWeights, shard_indexes

TEXTS = [
    "Vitamin D deficiency is linked to bone fractures in older adults",
    "Bone density falls with age; vitamin supplements slow the loss",
    "Key lime pie needs limes, condensed milk and a graham cracker crust",
    "Baking powder and baking soda make cakes rise",
    "The mailman was chased by two dogs",
    "Dogs and cats: a study of household pets and their owners",
    "Fractures of the hip in older women: a cohort study",
    "Powdered sugar on top of the cake",
]
QUERIES = ["vitamin D and bone fractures", "baking powder", "limes", "older dogs", "cake study"]


def merged(indexes: list[LexicalIndex], query: str, k: int) -> list[tuple[int, float]]:
    hits = [hit for index in indexes for hit in zip(*index.search([query], k)[0], strict=True)]
    return sorted(((int(row), float(score)) for row, score in hits), key=lambda h: -h[1])[:k]


@pytest.mark.parametrize("terms", [TermWeights(), HYBRID_TERMS])
def test_shards_scored_with_the_collection_s_statistics_merge_to_the_whole_index(
    terms: TermWeights,
) -> None:
    whole = LexicalIndex.build(TEXTS, terms=terms)
    parts = [[0, 3, 6], [1, 4, 7], [2, 5]]
    shards = shard_indexes(
        [[TEXTS[i] for i in part] for part in parts],
        terms=terms,
        rows=[np.array(part) for part in parts],
    )
    for query in QUERIES:
        [(rows, scores)] = whole.search([query], k=5)
        expected = [(int(r), float(s)) for r, s in zip(rows, scores, strict=True)]
        found = merged(shards, query, k=5)
        assert found == expected, query  # the same rows with the very same scores


def test_a_shard_scored_alone_ranks_differently_which_is_why_statistics_are_shared() -> None:
    # "vitamin" is rare in the collection but in every document of the first shard: scored with
    # its own counts, the shard would give it almost no weight.
    parts = [[0, 1], [2, 3, 4, 5, 6, 7]]
    alone = LexicalIndex.build([TEXTS[i] for i in parts[0]])
    shared = shard_indexes([[TEXTS[i] for i in part] for part in parts])[0]
    whole = LexicalIndex.build(TEXTS)
    [(_, alone_scores)] = alone.search(["vitamin"], k=2)
    [(_, shared_scores)] = shared.search(["vitamin"], k=2)
    [(_, whole_scores)] = whole.search(["vitamin"], k=2)
    np.testing.assert_array_equal(shared_scores, whole_scores)
    assert alone_scores.max() < 0.5 * whole_scores.max()


def test_one_shard_holding_everything_scores_as_bm25s_itself() -> None:
    [shard] = shard_indexes([TEXTS], terms=HYBRID_TERMS)
    whole = LexicalIndex.build(TEXTS, terms=HYBRID_TERMS)
    for part in ("data", "indices", "indptr"):
        np.testing.assert_array_equal(shard.retriever.scores[part], whole.retriever.scores[part])


def test_a_shard_s_index_keeps_its_counts_and_the_collection_s_through_saving(
    tmp_path: Path,
) -> None:
    shards = shard_indexes([TEXTS[:3], TEXTS[3:]])
    shards[1].save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25")
    assert loaded.shard == shards[1].shard
    assert loaded.shard.documents == 5
    assert loaded.shard.scored_with["documents"] == 8
    assert loaded.shard.scored_with["length"] == sum(s.shard.length for s in shards)
    for query in QUERIES:
        [(a_rows, a_scores)] = shards[1].search([query], k=3)
        [(b_rows, b_scores)] = loaded.search([query], k=3)
        np.testing.assert_array_equal(a_rows, b_rows)
        np.testing.assert_allclose(a_scores, b_scores)
    # An index of one whole collection records nothing.
    LexicalIndex.build(TEXTS).save(tmp_path / "whole")
    assert not (tmp_path / "whole" / STATISTICS_FILE).exists()
    assert LexicalIndex.load(tmp_path / "whole").shard is None


def test_a_damaged_statistics_record_is_refused_naming_the_file(tmp_path: Path) -> None:
    shard_indexes([TEXTS[:3], TEXTS[3:]])[0].save(tmp_path / "bm25")
    (tmp_path / "bm25" / STATISTICS_FILE).write_text(json.dumps({"documents": 3}))
    with pytest.raises(CollectionError, match=STATISTICS_FILE):
        LexicalIndex.load(tmp_path / "bm25")


def test_statistics_of_parts_add_up_to_those_of_the_whole() -> None:
    documents = [["bone", "vitamin", "bone"], ["dog"], [], ["vitamin", "dog"]]
    whole = CorpusStatistics.of(documents)
    halves = [CorpusStatistics.of(documents[:2]), CorpusStatistics.of(documents[2:])]
    total = CorpusStatistics.total(halves)
    assert total == whole
    assert (whole.documents, whole.length) == (4, 6)
    assert dict(whole.frequencies) == {"bone": 1, "vitamin": 2, "dog": 2}
    assert whole.mean_length == 1.5
    assert CorpusStatistics(0, 0).mean_length == 0.0
