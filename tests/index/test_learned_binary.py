"""Learned binary codes: ITQ heads, held in a FAISS LSH index that codes queries itself."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import anisotropic

from densekit.errors import InputError
from densekit.index import FlatIndex
from densekit.index.ann import AnnIndex
from densekit.index.learned_binary import BinaryHead, head_of, itq_head, lsh_index
from densekit.index.spec import parse_spec
from densekit.index.vectors import PassageGroups, ShardedVectors


def build(spec: str, vectors: np.ndarray) -> AnnIndex:
    sharded = ShardedVectors([vectors])
    return AnnIndex.build(spec, sharded, PassageGroups(sharded.rows, None))


def recall(index: AnnIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> float:
    found, _ = index.search(queries, k)
    truth, _ = FlatIndex([vectors]).search(queries, k)
    return float(np.mean([len(set(f) & set(t)) / k for f, t in zip(found, truth, strict=True)]))


def test_the_index_codes_vectors_as_its_head_does() -> None:
    vectors = anisotropic(500, seed=1)
    head = itq_head(vectors, 32)
    index = lsh_index(head)
    expected = np.packbits(head.signs(vectors) > 0, axis=1, bitorder="little")
    np.testing.assert_array_equal(index.sa_encode(vectors), expected)
    again = head_of(index)
    np.testing.assert_array_equal(again.projection, head.projection)
    np.testing.assert_array_equal(again.offset, head.offset)


def test_itq_rounds_with_less_loss_than_its_starting_rotation() -> None:
    vectors = anisotropic(2000, seed=1)
    untrained, early = itq_head(vectors, 32, iterations=0), itq_head(vectors, 32, iterations=5)
    trained = itq_head(vectors, 32)

    def agreement(head: BinaryHead) -> float:
        # ITQ's objective: ||B - V R||^2 = const - 2 tr(B^T V R), and tr(B^T V R) with B the
        # signs of V R is the summed magnitude of the projections.
        return float(np.abs(vectors @ head.projection + head.offset).sum())

    # Each iteration can only lower the loss.
    assert agreement(trained) >= agreement(early) > 1.03 * agreement(untrained)


@pytest.mark.parametrize(
    ("learned", "sign"), [("", ""), ("bits=32", "dim32:"), ("bits=16", "dim16:")]
)
def test_learned_bits_find_more_neighbours_than_as_many_sign_bits(learned: str, sign: str) -> None:
    vectors, queries = anisotropic(3000, seed=1), anisotropic(40, seed=2)
    options = ",".join(filter(None, ("learned=1", learned)))
    learned_recall = recall(build(f"binary({options})", vectors), vectors, queries)
    assert learned_recall > recall(build(f"{sign}binary", vectors), vectors, queries)


def test_hamming_scores_and_rescored_scores() -> None:
    vectors, queries = anisotropic(1000, seed=1), anisotropic(5, seed=2)
    index = build("binary(learned=1,bits=32)", vectors)
    head = head_of(index.codes.index)
    rows, scores = index.search(queries, 10)
    agreement = head.signs(queries) @ head.signs(vectors).T / 32  # 1 - 2 Hamming / bits
    np.testing.assert_allclose(scores, np.take_along_axis(agreement, rows, axis=1))
    rescored = build("binary(learned=1,bits=32)+rescore*4", vectors)
    rows, scores = rescored.search(queries, 10)
    np.testing.assert_allclose(
        scores, np.take_along_axis(queries @ vectors.T, rows, axis=1), rtol=1e-5
    )


def test_deleted_rows_never_come_back() -> None:
    vectors, queries = anisotropic(1000, seed=1), anisotropic(20, seed=2)
    deleted = np.random.default_rng(3).random(len(vectors)) < 0.5
    built = build("binary(learned=1)", vectors)
    sharded = ShardedVectors([vectors])
    index = AnnIndex(built.index_spec, built.codes, sharded, PassageGroups(1000, None, deleted))
    found, _ = index.search(queries, 10)
    assert (found >= 0).all() and not deleted[found].any()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("binary(learned=1,bits=72)", "72 learned bits from 64 dimensions"),
        ("dim32:binary(learned=1,bits=40)", "40 learned bits from 32 dimensions"),
    ],
)
def test_more_bits_than_dimensions_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        build(spec, anisotropic(300, seed=1))


def test_too_few_vectors_to_learn_from_are_refused() -> None:
    with pytest.raises(InputError, match="needs at least 64 vectors to learn its codes"):
        build("binary(learned=1)", anisotropic(40, seed=1))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("binary(bits=12,learned=1)", "multiple of 8"),
        ("binary(bits=64)", "dimN:binary"),
        ("HNSW32(learned=1)", "binary codes only"),
        ("binary(learned=2)", "learned is 1"),
    ],
)
def test_bad_learned_specs_say_why(text: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_spec(text)


def test_learned_specs_round_trip() -> None:
    text = "dim128:binary(learned=1,bits=64)+rescore*2"
    assert str(parse_spec(text)) == text
    assert parse_spec(text).is_learned_binary
    assert not parse_spec("binary(learned=0)").is_learned_binary
