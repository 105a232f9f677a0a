"""Training Binary PV models: codes that group documents by topic, and the bad inputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import topic_documents

from densekit.corpus import Document
from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.train.binary_pv import BinaryPVTraining, train_binary_pv

SMALL = BinaryPVTraining(bits=16, epochs=40, batch=32, min_count=1, seed=3)


def hamming_by_topic(codes: np.ndarray, topics: np.ndarray) -> tuple[float, float]:
    """Mean Hamming distance between codes of the same topic, and of different topics."""
    bits = codes > 0
    distances = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
    same = topics[:, None] == topics[None, :]
    off_diagonal = ~np.eye(len(codes), dtype=bool)
    return float(distances[same & off_diagonal].mean()), float(distances[~same].mean())


@pytest.mark.parametrize("real_dim", [0, 24])
def test_codes_learned_from_text_alone_group_documents_by_topic(
    tmp_path: Path, real_dim: int
) -> None:
    documents = topic_documents(topics=4, per_topic=24)
    settings = replace(SMALL, real_dim=real_dim)
    result = train_binary_pv(documents, tmp_path / "bpv", settings, progress=False)
    assert result.documents == 96 and result.last_loss < result.first_loss
    assert result.vocabulary == 4 * 12 + 20

    encoder = load_encoder(f"bpv:{tmp_path / 'bpv'}")
    assert encoder.dimension == 16
    codes = encoder.encode_documents([d.content for d in documents])
    assert set(np.unique(np.abs(codes)).round(6)) == {round(1 / 4, 6)}  # +-1/sqrt(16)
    same, different = hamming_by_topic(codes, np.repeat(np.arange(4), 24))
    assert same < 0.5 * different

    # A query is inferred: its code lands among its topic's documents.
    query = encoder.encode_queries(["topic2word1 topic2word5 topic2word7 common3"])
    nearest = np.argsort(-(codes @ query[0]))[:10]
    assert all(documents[i].id.startswith("t2-") for i in nearest)


def test_real_valued_variant_encodes_real_vectors_that_rank_like_its_codes(
    tmp_path: Path,
) -> None:
    documents = topic_documents(topics=3, per_topic=20)
    settings = replace(SMALL, real_dim=24)
    train_binary_pv(documents, tmp_path / "bpv", settings, progress=False)
    real = load_encoder(f"bpv:{tmp_path / 'bpv'}#output=real")
    assert real.dimension == 24
    vectors = real.encode_documents([d.content for d in documents])
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    query = real.encode_queries(["topic0word2 topic0word3 topic0word9"])
    assert all(documents[i].id.startswith("t0-") for i in np.argsort(-(vectors @ query[0]))[:10])


def test_duplicate_texts_share_one_code_and_training_is_reproducible(tmp_path: Path) -> None:
    documents = topic_documents(topics=2, per_topic=10)
    twice = [*documents, Document("copy", documents[0].text)]
    first = train_binary_pv(twice, tmp_path / "a", SMALL, progress=False)
    train_binary_pv(twice, tmp_path / "b", SMALL, progress=False)
    assert first.documents == 20 and first.duplicate_texts == 1
    texts = [d.content for d in twice]
    a = load_encoder(f"bpv:{tmp_path / 'a'}").encode_documents(texts)
    b = load_encoder(f"bpv:{tmp_path / 'b'}").encode_documents(texts)
    assert np.array_equal(a, b)


def test_bad_training_input_is_refused_with_what_to_do(tmp_path: Path) -> None:
    documents = topic_documents(topics=2, per_topic=5)
    with pytest.raises(InputError, match="no documents"):
        train_binary_pv([], tmp_path / "x", SMALL, progress=False)
    with pytest.raises(InputError, match="--min-count"):
        train_binary_pv(documents, tmp_path / "x", BinaryPVTraining(min_count=1000), progress=False)
    for bad, needle in ((12, "multiple of 8"), (4, "at least 8")):
        with pytest.raises(InputError, match=needle):
            BinaryPVTraining(bits=bad)
    with pytest.raises(InputError, match="epochs"):
        BinaryPVTraining(epochs=0)
    with pytest.raises(InputError, match="noise must be a finite number"):
        BinaryPVTraining(noise=float("nan"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="--overwrite"):
        train_binary_pv(documents, tmp_path / "full", SMALL, progress=False)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_documents_without_kept_terms_are_reported(tmp_path: Path) -> None:
    documents = [*topic_documents(topics=2, per_topic=8), Document("odd", "unique unseen")]
    settings = replace(SMALL, min_count=2)
    result = train_binary_pv(documents, tmp_path / "bpv", settings, progress=False)
    assert result.without_terms == 1
    assert "1 documents have no term kept" in result.warnings()[0]
