"""Tuning a collection's fusion on judgements, with the hashing encoder (no model to load).

The in-memory scoring of every setting is checked against the real search path (evaluate with
that fusion), and the stored default against what a reopened collection searches with.
"""

from __future__ import annotations

import errno
import json
import random
import shutil
from pathlib import Path

import pytest
from conftest import write_jsonl
from helpers import HashingEncoder

from densekit import CollectionError, FusionConfig, InputError
from densekit.evaluate import evaluate, load_beir, tune_fusion
from densekit.evaluate.tuning import FUSION_GRID, judgements_digest
from densekit.files import durability
from densekit.retrieve import DEFAULT_FUSION, Collection, build_collection
from densekit.retrieve.fusion import describe_fusion
from densekit.store import BuildOptions, layout

# Settings at depth 100 or more rank the same for nDCG@10 as evaluate's searches of 100 do,
# so their tuned scores must equal evaluate's exactly.
DEEP_GRID = tuple(fusion for fusion in FUSION_GRID if fusion.depth >= 100)


def judged_dataset(root: Path, *, train: int = 30, test: int = 10, noise: int = 3) -> Path:
    """80 documents of 8 to 20 words (lengths vary, so scores rarely tie) from a 120-word
    vocabulary; each query takes 2 words of its one relevant document and ``noise`` random
    ones (0: all its words, so every setting finds it first)."""
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(120)]
    documents = [
        {"_id": f"d{i}", "title": "", "text": " ".join(rng.sample(vocabulary, rng.randint(8, 20)))}
        for i in range(80)
    ]
    queries = []
    for number in range(train + test):
        words = documents[number]["text"].split()
        text = " ".join(rng.sample(words, 2) + rng.sample(vocabulary, noise) if noise else words)
        queries.append({"_id": f"q{number}", "text": text})
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", documents)
    write_jsonl(root / "queries.jsonl", queries)
    for split, numbers in (("train", range(train)), ("test", range(train, train + test))):
        lines = "".join(f"q{n}\td{n}\t1\n" for n in numbers)
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    return root


def hashing_build(dataset: Path, out: Path, **options) -> Path:
    built = build_collection(
        dataset / "corpus.jsonl",
        out,
        BuildOptions(progress=False, cache_dir=None, **options),
        encoder=HashingEncoder() if options.get("retriever") != "bm25" else None,
    )
    built.close()
    return out


def opened(directory: Path) -> Collection:
    return Collection(directory, encoder=HashingEncoder())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tuning")
    dataset = judged_dataset(root / "data")
    return dataset, hashing_build(dataset, root / "collection")


@pytest.fixture
def data_and_copy(built: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """The judged dataset and a copy of its collection this test may change."""
    dataset, collection = built
    copy = tmp_path / "collection"
    shutil.copytree(collection, copy)
    return dataset, copy


def ndcg(dataset: Path, collection: Collection, split: str = "train", **search) -> float:
    report = evaluate(dataset, collection=collection, split=split, metrics="nDCG@10", **search)
    return report.metrics["nDCG@10"]


def test_scores_match_searching_each_setting(built: tuple[Path, Path]) -> None:
    dataset, directory = built
    with opened(directory) as collection:
        tuning = tune_fusion(dataset, collection, grid=DEEP_GRID, store=False)
        assert not tuning.stored and tuning.queries == 30 and tuning.metric == "nDCG@10"
        assert tuning.fusion in DEEP_GRID and tuning.candidates == len(DEEP_GRID)
        assert tuning.score == pytest.approx(ndcg(dataset, collection, fusion=tuning.fusion))
        assert tuning.previous == DEFAULT_FUSION
        assert tuning.previous_score == pytest.approx(ndcg(dataset, collection))
        for retriever in ("dense", "bm25"):
            alone = ndcg(dataset, collection, retriever=retriever)
            assert tuning.parts[retriever] == pytest.approx(alone)
        # The choice is the best of the grid: no setting searches better.
        for fusion in DEEP_GRID[::5]:
            assert ndcg(dataset, collection, fusion=fusion) <= tuning.score + 1e-12
    # The data are hard enough for the settings to differ.
    assert tuning.score > tuning.previous_score or tuning.fusion == tuning.previous
    assert len({round(score, 6) for score in tuning.parts.values()}) == 2


def test_cross_validation_is_reported_fold_by_fold(built: tuple[Path, Path]) -> None:
    dataset, directory = built
    with opened(directory) as collection:
        tuning = tune_fusion(dataset, collection, folds=3, seed=4, store=False)
        again = tune_fusion(dataset, collection, folds=3, seed=4, store=False)
        other = tune_fusion(dataset, collection, folds=3, seed=5, store=False)
    held_out = [fold.held_out_score for fold in tuning.folds]
    assert [fold.queries for fold in tuning.folds] == [10, 10, 10]
    assert tuning.cv_mean == pytest.approx(sum(held_out) / 3)
    assert tuning.cv_std > 0 and tuning.cv_mean <= tuning.score
    assert all(fold.fusion in (*FUSION_GRID, DEFAULT_FUSION) for fold in tuning.folds)
    assert again.folds == tuning.folds and again.cv_mean == tuning.cv_mean
    assert other.fusion == tuning.fusion and other.folds != tuning.folds  # only CV reshuffles


def test_the_choice_becomes_the_default_search(data_and_copy: tuple[Path, Path]) -> None:
    dataset, directory = data_and_copy
    with opened(directory) as collection:
        tuning = tune_fusion(dataset, collection, grid=DEEP_GRID)
    assert tuning.stored
    manifest = json.loads((directory / "manifest.json").read_text())
    assert manifest["retriever"] == "hybrid"
    assert FusionConfig.stored(manifest["fusion"]) == tuning.fusion
    record = manifest["fusion_tuning"]
    assert record["dataset"] == "data" and record["split"] == "train"
    assert record["dataset_path"] == str(dataset.resolve())
    assert record["qrels_sha256"] == judgements_digest(load_beir(dataset, "train").qrels)
    assert record["metric"] == "nDCG@10" and record["queries"] == 30 and record["folds"] == 5
    assert record["cv_mean"] == pytest.approx(tuning.cv_mean)
    assert record["previous"] == DEFAULT_FUSION.to_dict()
    assert [fold["fold"] for fold in record["fold_choices"]] == [1, 2, 3, 4, 5]
    assert set(record["parts"]) == {"dense", "bm25"} and record["version"]
    with opened(directory) as reopened:
        assert reopened.searcher().fusion == tuning.fusion
        info = reopened.info()
        assert info["fusion_tuning"]["cv_std"] == record["cv_std"]
        searched = reopened.search("w1 w2 w3", k=5)
        with_fusion = reopened.searcher("hybrid", fusion=tuning.fusion).search(["w1 w2 w3"], 5)
        assert searched == with_fusion[0]
        # Tuned again, the fusion it replaces is the tuned one.
        assert tune_fusion(dataset, reopened, grid=DEEP_GRID).previous == tuning.fusion


def test_ties_keep_the_current_default(tmp_path: Path) -> None:
    dataset = judged_dataset(tmp_path / "easy", noise=0)  # every setting ranks every query's
    current = FusionConfig("rrf", k=30, depth=200)  # document first
    directory = hashing_build(dataset, tmp_path / "collection", fusion=current)
    with opened(directory) as collection:
        tuning = tune_fusion(dataset, collection, store=False)
        plain = tune_fusion(dataset, collection, store=False, grid=FUSION_GRID[::-1])
    assert tuning.score == tuning.previous_score == 1.0 and tuning.parts == {
        "dense": 1.0,
        "bm25": 1.0,
    }
    assert tuning.fusion == plain.fusion == current
    assert all(fold.fusion == current for fold in tuning.folds)


def test_eval_refuses_the_tuned_default_on_its_own_judgements(
    data_and_copy: tuple[Path, Path],
) -> None:
    dataset, directory = data_and_copy
    with opened(directory) as collection:
        tune_fusion(dataset, collection)
    with opened(directory) as collection:
        for search in ({}, {"retriever": "hybrid"}):
            with pytest.raises(InputError) as refused:
                ndcg(dataset, collection, **search)
            message = str(refused.value)
            assert "tuned on these judgements (data, split 'train', 30 queries)" in message
            assert "--split test" in message and "--fusion/--alpha" in message
        # Other judgements, and settings named explicitly, are evaluated.
        assert 0 < ndcg(dataset, collection, split="test") <= 1
        assert 0 < ndcg(dataset, collection, retriever="dense") <= 1
        assert 0 < ndcg(dataset, collection, fusion=FusionConfig.hybrid(alpha=0.5)) <= 1
        # The same judgements under another name are the same judgements.
        shutil.copy(dataset / "qrels" / "train.tsv", dataset / "qrels" / "again.tsv")
        try:
            with pytest.raises(InputError, match="tuned on these judgements"):
                ndcg(dataset, collection, split="again")
        finally:
            (dataset / "qrels" / "again.tsv").unlink()


def test_the_judgements_digest_ignores_order_and_file() -> None:
    one = {"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 2}}
    assert judgements_digest(one) == judgements_digest({"q2": {"d3": 2}, "q1": {"d2": 0, "d1": 1}})
    assert judgements_digest(one) != judgements_digest({"q1": {"d1": 1, "d2": 0}, "q2": {"d3": 1}})


def _refused(dataset: Path, directory: Path, error: type, *, path: bool = False, **settings) -> str:
    """The message of ``error`` from tuning ``directory`` (opened with the hashing encoder, or
    by ``path``); nothing stored changed."""
    before = (directory / "manifest.json").read_bytes()
    with pytest.raises(error) as refused:
        if path:
            tune_fusion(dataset, directory, **settings)
        else:
            with opened(directory) as collection:
                tune_fusion(dataset, collection, **settings)
    assert (directory / "manifest.json").read_bytes() == before
    return str(refused.value)


def test_judgements_of_another_corpus_are_refused(data_and_copy, tmp_path: Path) -> None:
    dataset, directory = data_and_copy
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    lines = "".join(f"q{n}\tx{n}\t1\n" for n in range(30))
    (other / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + lines)
    message = _refused(other, directory, InputError)
    assert str(other / "qrels" / "train.tsv") in message
    assert "none of the 30 document ids judged in split 'train'" in message
    assert "(e.g. 'x0')" in message and "corpus the collection was built from" in message


def test_too_few_judged_queries_are_refused(data_and_copy) -> None:
    dataset, directory = data_and_copy
    message = _refused(dataset, directory, InputError, split="test")
    assert "split 'test' has 10 judged queries with a relevant document" in message
    assert "tuning needs at least 20" in message
    message = _refused(dataset, directory, InputError, folds=8)
    assert "has 30 judged queries" in message and "needs at least 32" in message
    assert "--folds 8 needs 32" in message


def test_a_collection_without_both_lists_is_refused(built, tmp_path: Path) -> None:
    dataset, _ = built
    for retriever, missing in (("bm25", "no dense index"), ("dense", "no BM25 index")):
        directory = hashing_build(dataset, tmp_path / retriever, retriever=retriever)
        message = _refused(dataset, directory, CollectionError, path=True)
        assert missing in message and f"it supports {retriever}" in message
        assert "--retriever hybrid" in message


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"metric": "nDCG@ten"}, "unknown metric 'nDCG@ten'"),
        ({"metric": "nDCG@10,R@100"}, "one metric, got 2"),
        ({"folds": 1}, "folds must be a whole number of at least 2, got 1"),
        ({"seed": -1}, "seed must be a whole number, 0 or more"),
        ({"grid": ()}, "grid must hold at least one FusionConfig"),
        ({"split": "dev"}, "no qrels for split 'dev'"),
    ],
)
def test_bad_settings_are_refused_before_any_work(data_and_copy, settings, message) -> None:
    dataset, directory = data_and_copy
    assert message in _refused(dataset, directory, InputError, **settings)


def test_a_failure_while_storing_leaves_the_old_manifest(data_and_copy, monkeypatch) -> None:
    dataset, directory = data_and_copy
    before = (directory / "manifest.json").read_bytes()

    def full_disk(descriptor: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with opened(directory) as collection:
        monkeypatch.setattr(durability.os, "fsync", full_disk)
        with pytest.raises(OSError, match="nothing half-written was published"):
            tune_fusion(dataset, collection)
        monkeypatch.undo()
    assert (directory / "manifest.json").read_bytes() == before
    assert not [path.name for path in directory.iterdir() if path.name.endswith(".tmp")]
    with opened(directory) as collection:
        assert collection.manifest.fusion_tuning is None
        # Another writer holding the collection: refused, nothing changed.
        with layout.directory_lock(directory), pytest.raises(CollectionError, match="another"):
            tune_fusion(dataset, collection)
    assert (directory / "manifest.json").read_bytes() == before


def test_settings_are_described_for_people() -> None:
    assert describe_fusion(FusionConfig.hybrid("convex", 0.4)) == (
        "convex 0.4 × dense + 0.6 × bm25, depth 100"
    )
    assert describe_fusion(DEFAULT_FUSION).startswith("calibrated per query 1 × dense")
    assert describe_fusion(FusionConfig("rrf", k=30, depth=50)) == "rrf k 30, depth 50"
    assert len(FUSION_GRID) == 64 and len(set(FUSION_GRID)) == 64 and DEFAULT_FUSION in FUSION_GRID
    assert min(fusion.depth for fusion in FUSION_GRID) == 100  # as deep as eval searches
