"""Training rows for the reranker: fresh negatives per epoch, positives cycled, dev held out."""

from __future__ import annotations

from pathlib import Path

from helpers import judged_hashing_collection

from densekit.evaluate.beir import load_beir
from densekit.train.mining import MiningConfig
from densekit.train.reranker_data import Group, TrainingGroups, training_groups


def test_each_epoch_takes_the_next_negatives_and_cycles_positives() -> None:
    groups = TrainingGroups(
        train=[Group("q", ("p1", "p2"), ("n1", "n2", "n3", "n4", "n5"))],
        dev=[],
        texts={doc: doc.upper() for doc in ("p1", "p2", "n1", "n2", "n3", "n4", "n5")},
        skipped_queries=0,
        unknown_documents=0,
    )
    rows = groups.rows(negatives=2, epochs=3)
    assert list(rows) == ["query", "positive", "negative_1", "negative_2"]
    assert rows["query"] == ["q", "q", "q"]
    assert rows["positive"] == ["P1", "P2", "P1"]
    assert rows["negative_1"] == ["N1", "N3", "N5"]
    assert rows["negative_2"] == ["N2", "N4", "N1"]  # a short pool wraps around


def test_groups_skip_positives_and_hold_out_a_share(tiny_beir: Path, tmp_path: Path) -> None:
    collection = judged_hashing_collection(tiny_beir, tmp_path / "c")
    data = load_beir(tiny_beir, "train")
    mining = MiningConfig.window(depth=4, margin=None)
    groups = training_groups(data, collection, negatives=1, epochs=2, mining=mining, dev_share=0.5)
    assert len(groups.train) == 1 and len(groups.dev) == 1
    assert groups.unknown_documents == 1
    for group in groups.train + groups.dev:
        assert len(group.negatives) == 2 and not set(group.negatives) & set(group.positives)
    again = training_groups(data, collection, negatives=1, epochs=2, mining=mining, dev_share=0.5)
    assert again == groups
