"""Training rows: judged positives, mined negatives in a rank window, the margin filter, and
pairs/triplets JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import judged_hashing_collection

from densekit.errors import InputError
from densekit.evaluate.beir import load_beir
from densekit.train.mining import MiningConfig
from densekit.train.pairs import read_triplets, training_examples, write_triplets


def test_rows_pair_each_positive_with_negatives_that_are_not_judged_relevant(
    tiny_beir: Path, tmp_path: Path
) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq1\td1\t1\nq2\td2\t1\nq2\td4\t0\n",
        encoding="utf-8",
    )
    data = load_beir(tiny_beir, "train")
    recipe = MiningConfig(negatives=2, ranks=(1, 5), margin=None)
    examples = training_examples(data, recipe, collection=collection)
    assert [(r.query_id, r.positive_id) for r in examples.rows] == [
        ("q1", "d1"),
        ("q1", "d3"),
        ("q2", "d2"),
    ]
    for row in examples.rows:
        assert len(row.negatives) == 2
        assert not {"d1", "d3"} & set(row.negative_ids) if row.query_id == "q1" else True
        assert "d2" not in row.negative_ids if row.query_id == "q2" else True
    # A margin of 1e-6 drops every negative the dense model scores above ~0: fewer are left.
    strict = training_examples(
        data, MiningConfig(negatives=2, ranks=(1, 5), margin=1e-6), collection=collection
    )
    assert strict.dropped_negatives > 0
    held_out = training_examples(data, recipe, collection=collection, dev_share=0.5)
    assert len(held_out.dev) == 1 and held_out.queries == 1

    path = tmp_path / "triplets.jsonl"
    write_triplets(examples, path)
    again = read_triplets(path)
    assert again.rows == examples.rows and again.negatives_per_row == 2


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([{"positive": "p"}], ":1: needs a non-empty string field query"),
        ([{"query": "q", "positive": ""}], ":1: needs a non-empty string field positive"),
        ([{"query": "q", "positive": "p", "negatives": "n"}], ":1: negatives must be a list"),
        (
            [{"query": "q", "positive": "p", "negatives": ["n"]}, {"anchor": "q", "positive": "p"}],
            ":2: a row without negatives among rows with them",
        ),
    ],
)
def test_bad_triplet_files_name_the_line(tmp_path: Path, lines: list, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_triplets(path)


def test_a_cross_encoder_check_drops_negatives_scored_like_the_positive(
    tiny_beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from densekit.retrieve import rerankers

    class Undecided:  # scores every passage alike: no negative is safely below the positive
        def __init__(self, model: str) -> None:
            self.model = model

        def score(self, pairs: list[tuple[str, str]]) -> np.ndarray:
            return np.ones(len(pairs), dtype=np.float32)

    monkeypatch.setattr(rerankers, "CrossEncoderReranker", Undecided)
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    (tiny_beir / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td2\t1\n", encoding="utf-8"
    )
    recipe = MiningConfig(negatives=1, ranks=(1, 5), margin=None, cross_encoder="teacher")
    examples = training_examples(load_beir(tiny_beir, "train"), recipe, collection=collection)
    assert examples.rows == [] and examples.dropped_negatives >= 2
