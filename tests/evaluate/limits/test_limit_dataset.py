"""The LIMIT-style dataset: the paper's construction, reproducible, and as hard for single
vectors as the published LIMIT-small."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from conftest import shared_dataset
from required import require

import densekit
from densekit.errors import InputError
from densekit.evaluate import evaluate
from densekit.evaluate.limits.dataset import (
    LimitSpec,
    generate,
    relevant_sets,
    vocabulary,
    write_limit_dataset,
)
from densekit.store import BuildOptions


def test_the_small_set_judges_every_pair_of_46_people_once() -> None:
    data = generate(LimitSpec())
    assert len(data.corpus) == 46 and len(data.queries) == 1000 and data.judged_documents == 46
    pairs = Counter()
    relevant: dict[str, set[str]] = {}
    for query, document in data.qrels:
        relevant.setdefault(query, set()).add(document)
    for people in relevant.values():
        assert len(people) == 2
        pairs[frozenset(people)] += 1
    assert len(pairs) == 1000 and max(pairs.values()) == 1  # 1,000 distinct pairs
    ids = [document for document, _ in data.corpus]
    likes = dict(zip(ids, data.likes, strict=True))
    for query_id, text in data.queries:
        thing = text.removeprefix("Who likes ").removesuffix("?")
        # Liked by exactly its relevant people, and named in their documents.
        assert {person for person, liked in likes.items() if thing in liked} == relevant[query_id]
        assert all(thing in dict(data.corpus)[person] for person in relevant[query_id])
    assert min(len(liked) for liked in data.likes) == 45


def test_relevant_sets_are_the_first_subsets_of_the_fewest_documents() -> None:
    n, sets = relevant_sets(50_000, 1000, 2)
    assert n == 46 and math.comb(45, 2) < 1000 <= math.comb(46, 2)
    assert sets[:2] == [(0, 1), (0, 2)] and len(sets) == 1000
    with pytest.raises(InputError, match="give --docs 46 or more"):
        relevant_sets(40, 1000, 2)


def test_the_set_is_reproducible_and_seeds_differ() -> None:
    assert generate(LimitSpec(seed=3)) == generate(LimitSpec(seed=3))
    assert generate(LimitSpec(seed=3)).queries != generate(LimitSpec(seed=4)).queries


def test_the_large_version_pads_with_people_nobody_asks_about() -> None:
    data = generate(LimitSpec(docs=2000, queries=300, likes=20))
    judged = {document for _, document in data.qrels}
    assert len(data.corpus) == 2000 and len({d for d, _ in data.corpus}) == 2000
    assert len(judged) == data.judged_documents == 25  # C(24, 2) < 300 = C(25, 2)


def test_queries_beyond_the_vocabulary_are_refused() -> None:
    things = len(vocabulary()[0])
    with pytest.raises(InputError, match=f"vocabulary has {things} things"):
        generate(LimitSpec(docs=100, queries=things))


def test_single_vectors_fail_the_generated_set_as_they_fail_limit_small(tmp_path: Path) -> None:
    require("static_model")
    generated = tmp_path / "generated"
    write_limit_dataset(LimitSpec(), generated)
    options = BuildOptions(model="static", retriever="hybrid", progress=False, cache_dir=None)
    for dataset in (generated, shared_dataset("limit-small")):
        collection = densekit.build_collection(
            dataset / "corpus.jsonl", tmp_path / f"{dataset.name}-built", options
        )
        recall = {
            retriever: evaluate(
                dataset, collection=collection, retriever=retriever, metrics="R@2"
            ).metrics["R@2"]
            for retriever in ("dense", "bm25")
        }
        collection.close()
        assert recall["bm25"] > 0.9 and recall["dense"] < 0.5, (dataset.name, recall)


def test_a_person_who_likes_one_thing_reads_naturally() -> None:
    data = generate(LimitSpec(docs=3, queries=3, k=2, likes=1))
    for (name, text), liked in zip(data.corpus, data.likes, strict=True):
        if len(liked) == 1:
            assert text == f"{name} likes {liked[0]}."
        assert " and ." not in text and "likes  and" not in text
