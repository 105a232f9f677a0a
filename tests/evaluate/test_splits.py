from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import DOCUMENTS, write_jsonl

from densekit.errors import InputError
from densekit.evaluate import load_beir
from densekit.evaluate.beir import BeirDataset, Qrels
from densekit.evaluate.splits import (
    SHORTFALL,
    DatasetSplit,
    load_judged,
    normalised_text,
    seen_breakdown,
    split_by_document,
    split_by_query,
    write_split,
)


def generated(seed: int, *, concentrated: bool = False, queries: int = 240) -> BeirDataset:
    """Judgements that overlap like a real collection's: one to three relevant documents per
    query, drawn uniformly from 300 (components of up to ~40 queries) or, ``concentrated``,
    Zipf-like from 400 (a few documents relevant to most queries: one giant component).
    Some judgements are grade 0, and some texts repeat another query's in other case and
    spacing."""
    rng = np.random.default_rng(1000 + seed)
    documents = 400 if concentrated else 300
    popularity = None
    if concentrated:
        popularity = 1.0 / np.arange(1, documents + 1) ** 1.1
        popularity /= popularity.sum()
    qrels: Qrels = {}
    texts: dict[str, str] = {}
    for number in range(queries):
        query_id = f"q{number}"
        size = int(rng.choice([1, 2, 3], p=[0.7, 0.2, 0.1]))
        chosen = rng.choice(documents, size=size, replace=False, p=popularity)
        qrels[query_id] = {f"d{doc}": 1 for doc in chosen}
        if rng.random() < 0.2:  # judged not relevant: links nothing
            qrels[query_id][f"d{int(rng.integers(documents))}"] = 0
        texts[query_id] = f"query number {number}"
        if number and rng.random() < 0.05:
            twin = texts[f"q{int(rng.integers(number))}"]
            texts[query_id] = f"  {twin.upper()}\t"
    return BeirDataset(Path("generated"), "train+test", None, texts, qrels)


def relevant_to(qrels: Qrels, queries: tuple[str, ...]) -> set[str]:
    return {doc for q in queries for doc, grade in qrels[q].items() if grade > 0}


def assert_disjoint(data: BeirDataset, split: DatasetSplit) -> None:
    assert not relevant_to(data.qrels, split.train) & relevant_to(data.qrels, split.test)
    train_texts = {normalised_text(data.queries[q]) for q in split.train}
    assert not any(normalised_text(data.queries[q]) in train_texts for q in split.test)
    parts = [set(split.train), set(split.test), set(split.dropped)]
    assert sum(map(len, parts)) == len(set().union(*parts)) == len(data.qrels)
    counts = split.breakdown().counts()
    assert counts == {"all": 0, "some": 0, "none": len(split.test), "repeated_text": 0}


@pytest.mark.parametrize("seed", range(5))
def test_document_split_shares_no_relevant_document_and_no_text(seed: int) -> None:
    data = generated(seed)
    split = split_by_document(data, test_share=0.3, seed=seed)
    assert_disjoint(data, split)
    # Whole components fill the test side: nothing is dropped, the share is never
    # overshot, and it is missed by less than one component.
    assert split.dropped == ()
    target = round(0.3 * len(data.qrels))
    assert 0 <= target - len(split.test) < split.largest_component


@pytest.mark.parametrize("seed", range(3))
def test_a_giant_component_is_cut_and_the_split_stays_disjoint(seed: int) -> None:
    data = generated(seed, concentrated=True)
    split = split_by_document(data, test_share=0.3, seed=seed)
    assert_disjoint(data, split)
    assert split.largest_component > 150 and split.dropped
    target = round(0.3 * len(data.qrels))
    assert target * (1 - SHORTFALL) <= len(split.test) <= target


def test_a_random_split_of_the_same_queries_leaks() -> None:
    data = generated(0)
    leaked = split_by_query(data, test_share=0.3, seed=0).breakdown()
    assert len(leaked.all) + len(leaked.some) > 0


def test_repeated_texts_stay_on_one_side() -> None:
    texts = {f"q{i}": f"question {i}" for i in range(20)}
    texts |= {"twin-a": "Does  Vitamin D help?", "twin-b": "does vitamin d help?"}
    qrels = {q: {f"doc-{q}": 1} for q in texts}  # no shared document: only the text links
    data = BeirDataset(Path("twins"), "test", None, texts, qrels)
    for seed in range(10):
        split = split_by_document(data, test_share=0.5, seed=seed)
        assert ("twin-a" in split.test) == ("twin-b" in split.test)
        assert split.largest_component == 2 and split.components == 21


def test_the_split_depends_on_the_seed_alone() -> None:
    data = generated(3)
    first, again = split_by_document(data, 0.3, 7), split_by_document(data, 0.3, 7)
    assert (first.train, first.test) == (again.train, again.test)
    assert split_by_document(data, 0.3, 8).test != first.test


def test_a_chain_of_queries_is_cut_and_what_straddles_is_dropped() -> None:
    """Thirty queries chained by shared documents make one component; the four others cannot
    reach the share, so the chain is cut and the report names what was dropped."""
    texts = {f"q{i}": f"question {i}" for i in range(34)}
    qrels: Qrels = {f"q{i}": {f"link-{i}": 1, f"link-{i + 1}": 1} for i in range(30)}
    qrels |= {f"q{i}": {f"own-{i}": 1} for i in range(30, 34)}
    data = BeirDataset(Path("chain"), "test", None, texts, qrels)
    split = split_by_document(data, test_share=0.3, seed=0)
    assert_disjoint(data, split)
    assert split.largest_component == 30 and len(split.test) == 10
    assert split.dropped and split.train
    assert split.report()["dropped"] == list(split.dropped)


def test_seen_breakdown_sorts_test_queries_by_their_seen_relevant_documents() -> None:
    train = {"t1": {"a": 1, "b": 1}, "t2": {"c": 2, "x": 0}}
    test = {"all": {"a": 1, "c": 1}, "some": {"b": 1, "z": 1}, "none": {"x": 1, "y": 1}}
    texts = {"t1": "Same  words", "t2": "other", "all": "same words", "some": "s", "none": "n"}
    breakdown = seen_breakdown(train, test, texts)
    assert (breakdown.all, breakdown.some, breakdown.none) == (("all",), ("some",), ("none",))
    assert breakdown.repeated_text == ("all",)


def beir_folder(root: Path) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", DOCUMENTS)
    write_jsonl(root / "queries.jsonl", [{"_id": f"q{i}", "text": f"text {i}"} for i in range(6)])
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq0\td1\t2\nq1\td1\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq3\td3\t1\nq3\td4\t0\nq4\td5\t1\nq5\td2\t1\n",
        encoding="utf-8",
    )
    return root


def test_written_split_loads_as_a_beir_dataset_with_its_grades(tmp_path: Path) -> None:
    source = beir_folder(tmp_path / "data")
    data = load_judged(source)
    assert data.split == "test+train" and len(data.qrels) == 6
    split = split_by_document(data, test_share=0.5, seed=1)
    out = write_split(split, tmp_path / "split")
    train, test = load_beir(out, "train"), load_beir(out, "test")
    assert set(train.qrels) == set(split.train) and set(test.qrels) == set(split.test)
    assert {**train.qrels, **test.qrels} == data.qrels  # grades, and grade 0, as judged
    assert (
        test.corpus_path is not None
        and test.corpus_path.read_bytes() == (source / "corpus.jsonl").read_bytes()
    )
    card = json.loads((out / "densekit_split.json").read_text())
    assert card["by"] == "document" and card["from_splits"] == ["test", "train"]
    with pytest.raises(InputError, match="exists and is not empty; pass --overwrite"):
        write_split(split, out)
    write_split(split_by_document(data, 0.5, seed=2), out, overwrite=True)
    with pytest.raises(InputError, match="would be replaced"):
        write_split(split, tmp_path, overwrite=True)
    assert (source / "queries.jsonl").exists()


@pytest.mark.parametrize("share", [0, 1, -0.2, 1.5, True])
def test_a_share_outside_zero_one_is_refused(share: float) -> None:
    with pytest.raises(InputError, match="--test-share"):
        split_by_document(generated(0), test_share=share)


def test_a_dataset_without_judgements_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "bare"
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "queries.jsonl", [{"_id": "q1", "text": "a question"}])
    with pytest.raises(InputError, match=r"no judgements \(qrels/\*\.tsv\)"):
        load_judged(root)
    with pytest.raises(InputError, match="no qrels for split 'dev'"):
        load_judged(beir_folder(tmp_path / "data"), ["dev"])
    one = BeirDataset(root, "test", None, {"q1": "a question"}, {"q1": {"d1": 1}})
    with pytest.raises(InputError, match="at least 2"):
        split_by_document(one)


def test_queries_all_linked_to_one_another_cannot_be_split() -> None:
    texts = {"a": "first", "b": "second"}
    qrels = {"a": {"hub": 1}, "b": {"hub": 1}}
    with pytest.raises(InputError, match="no document-disjoint split"):
        split_by_document(BeirDataset(Path("linked"), "test", None, texts, qrels))
