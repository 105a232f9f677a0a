"""Training learned binary heads on queries, and `adapt --kind binary` on a collection."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import HashingEncoder, anisotropic, write_judged_dataset

from densekit.adapt import AdapterTraining
from densekit.adapt.binary_codes import BinaryCodeSpec, train_binary_head
from densekit.adapt.on_collection import AdaptOptions, adapt_collection
from densekit.encode.adapters.residual import AdapterSpec
from densekit.errors import InputError
from densekit.index.learned_binary import BinaryHead, head_of, itq_head
from densekit.retrieve import build_collection, open_collection
from densekit.store import BuildOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DOCUMENTS = anisotropic(2000, seed=1)


def queries_near_documents(count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    near = DOCUMENTS[rng.integers(0, len(DOCUMENTS), count)] + 0.1 * rng.normal(size=(count, 64))
    return (near / np.linalg.norm(near, axis=1, keepdims=True)).astype(np.float32)


def float_top_found(head, queries: np.ndarray, k: int = 10) -> float:
    """The share of each query's float top ``k`` that its code's Hamming top ``k`` holds."""
    truth = np.argsort(-(queries @ DOCUMENTS.T), axis=1)[:, :k]
    agreement = head.signs(queries) @ head.signs(DOCUMENTS).T
    found = np.argsort(-agreement, axis=1, kind="stable")[:, :k]
    return float(np.mean([len(set(a) & set(b)) / k for a, b in zip(truth, found, strict=True)]))


def test_training_on_queries_codes_held_out_queries_closer_to_the_float_ranking() -> None:
    start = itq_head(DOCUMENTS, 32)
    training = AdapterTraining(epochs=30, batch=64, temperature=0.02)
    trained, report = train_binary_head(start, queries_near_documents(300, 1), DOCUMENTS, training)
    held_out = queries_near_documents(100, 2)
    assert float_top_found(trained, held_out) > float_top_found(start, held_out) + 0.03
    assert report.loss_last_epoch < report.loss_first_epoch
    assert report.steps == 30 * 5 and report.bits == 32 and report.pairs == 0


def test_judged_positives_rise_with_the_contrastive_loss() -> None:
    queries = queries_near_documents(200, 3)
    rng = np.random.default_rng(4)
    pairs = np.stack([np.arange(200), rng.integers(0, len(DOCUMENTS), 200)], axis=1)
    start = itq_head(DOCUMENTS, 32)

    def positive_rank(contrastive: float) -> float:
        training = AdapterTraining(epochs=40, batch=50, temperature=0.05, negatives=500)
        head, _ = train_binary_head(start, queries, DOCUMENTS, training, pairs, contrastive)
        agreement = head.signs(queries) @ head.signs(DOCUMENTS).T
        positive = agreement[pairs[:, 0], pairs[:, 1]]
        return float(np.mean((agreement > positive[:, None]).sum(axis=1)))

    assert positive_rank(1.0) < 0.5 * positive_rank(0.0)


@pytest.mark.parametrize(
    ("queries", "message"),
    [(np.zeros((0, 64), np.float32), "no training queries"), (np.ones((4, 32)), "32 dimensions")],
)
def test_training_refuses_what_it_cannot_use(queries: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        train_binary_head(itq_head(DOCUMENTS, 16), queries, DOCUMENTS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"bits": 12}, "multiple of 8"),
        ({"contrastive": -1.0}, "0 or more"),
        ({"rescore": -1}, "0 \\(no rescoring\\)"),
    ],
)
def test_bad_binary_settings_are_refused(spec: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        BinaryCodeSpec(**spec)


@pytest.fixture
def judged(tmp_path: Path, hashing_models: None) -> Path:
    """A BEIR dataset of 200 documents with 20 train queries, each judging one document (and
    one judging a document not in the corpus), and a HashingEncoder collection of it at
    tmp_path / "c"."""
    root = tmp_path / "judged"
    write_judged_dataset(root, 200, every=10)
    with (root / "qrels" / "train.tsv").open("a", encoding="utf-8") as qrels:
        qrels.write("q0\tgone\t1\n")
    options = BuildOptions(progress=False, cache_dir=None)
    build_collection(root / "corpus.jsonl", tmp_path / "c", options, encoder=HashingEncoder())
    return root


def test_a_collection_gets_codes_trained_on_its_queries(judged: Path, tmp_path: Path) -> None:
    options = AdaptOptions(
        kind="binary",
        binary=BinaryCodeSpec(bits=16, rescore=0),
        training=AdapterTraining(epochs=5, batch=4),
    )
    report = adapt_collection(judged, tmp_path / "c", options)
    assert report["index"] == "binary(learned=1,bits=16)"
    assert report["queries"] == 20 and report["pairs"] == 20 and report["skipped_judgements"] == 1
    collection = open_collection(tmp_path / "c").with_encoder(HashingEncoder())
    head = head_of(collection.stored.dense_index.codes.index)
    vectors, _ = collection.stored.dense_vectors()
    itq = itq_head(np.asarray(vectors.shards[0]), 16)
    assert not np.allclose(head.projection, itq.projection)  # trained, not ITQ's
    assert len(collection.search(documents_text(judged)[0], 3)) == 3

    # Again: training goes on from the stored head, keeping the index's settings.
    again = adapt_collection(judged, tmp_path / "c", options)
    assert again["index"] == "binary(learned=1,bits=16)"


def test_without_a_dataset_the_codes_are_learned_from_the_vectors(
    judged: Path, tmp_path: Path
) -> None:
    options = AdaptOptions(kind="binary", binary=BinaryCodeSpec(bits=16, rescore=4))
    report = adapt_collection(None, tmp_path / "c", options)
    assert report["index"] == "binary(learned=1,bits=16)+rescore*4"
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["dense"]["index"] == report["index"]
    with pytest.raises(InputError, match="stored in the collection's index"):
        adapt_collection(judged, tmp_path / "c", options, out=tmp_path / "head")


def documents_text(root: Path) -> list[str]:
    return [json.loads(line)["text"] for line in (root / "corpus.jsonl").open(encoding="utf-8")]


def test_heads_that_cannot_code_are_refused() -> None:
    with pytest.raises(InputError, match="multiple of 8"):
        BinaryHead(np.ones((64, 12)), np.zeros(12))
    with pytest.raises(InputError, match="one offset per bit"):
        BinaryHead(np.ones((64, 16)), np.zeros(8))
    head = BinaryHead(np.ones((64, 16), dtype=np.float64), np.zeros(16, dtype=np.float64))
    assert head.projection.dtype == np.float32 and head.bits == 16
    with pytest.raises(InputError, match="need at least 64 vectors"):
        itq_head(DOCUMENTS[:40], 64)


def test_a_collection_too_small_for_its_bits_is_refused_before_training(
    judged: Path, tmp_path: Path
) -> None:
    options = AdaptOptions(kind="binary", binary=BinaryCodeSpec(bits=64, rescore=0))
    small = tmp_path / "small"
    lines = (judged / "corpus.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (tmp_path / "short.jsonl").write_text("".join(lines[:40]), encoding="utf-8")
    options_ = BuildOptions(progress=False, cache_dir=None)
    build_collection(tmp_path / "short.jsonl", small, options_, encoder=HashingEncoder())
    with pytest.raises(InputError, match="needs at least 64 vectors to learn its codes"):
        adapt_collection(judged, small, options)


def test_stored_adapters_are_honoured(judged: Path, tmp_path: Path) -> None:
    collection = tmp_path / "c"
    quick = AdapterTraining(epochs=1, batch=8)
    both = AdaptOptions(residual=AdapterSpec(rank=4, sides="both"), training=quick)
    adapt_collection(judged, collection, both)
    binary = AdaptOptions(kind="binary", binary=BinaryCodeSpec(bits=16), training=quick)
    with pytest.raises(InputError, match="maps documents"):
        adapt_collection(judged, collection, binary)
    queries_only = AdaptOptions(residual=AdapterSpec(rank=4, sides="query"), training=quick)
    adapt_collection(judged, collection, queries_only)
    report = adapt_collection(judged, collection, binary)  # trains on mapped query vectors
    assert report["index"] == "binary(learned=1,bits=16)+rescore*2"
