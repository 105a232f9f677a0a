"""Hard-negative mining: known positives never come back, every retriever contributes."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.errors import InputError
from densekit.retrieve import build_collection
from densekit.store import BuildOptions
from densekit.train import MiningConfig, mine_negatives


@pytest.fixture
def collection(hashing_collection):
    return hashing_collection


def test_negatives_skip_positives_and_are_reproducible(collection) -> None:
    queries = {"q1": "vitamin D bones", "q2": "dogs"}
    positives = {"q1": {"d3", "d5"}, "q2": {"d2"}}
    config = MiningConfig(negatives=3, ranks=(1, 5))
    mined = mine_negatives(collection, queries, positives, config)
    assert mined == mine_negatives(collection, queries, positives, config)
    for query_id, negatives in mined.items():
        assert len(negatives) == 3 and len(set(negatives)) == 3
        assert not set(negatives) & positives[query_id]


def test_skip_leaves_out_the_top_ranks(collection) -> None:
    queries = {"q1": "vitamin D bones"}
    top = mine_negatives(collection, queries, {}, MiningConfig(negatives=1, ranks=(1, 1)))["q1"]
    rest = mine_negatives(
        collection, queries, {}, MiningConfig(negatives=4, ranks=(2, 5), retrievers=("dense",))
    )["q1"]
    assert top[0] not in rest


def test_bad_mining_settings_are_refused(collection, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="skip < depth"):
        MiningConfig.window(depth=5, skip=5)
    bm25_only = build_collection(
        collection.manifest.source, tmp_path / "b", BuildOptions(progress=False, retriever="bm25")
    )
    with pytest.raises(InputError, match="no 'dense' retriever to mine negatives with"):
        mine_negatives(bm25_only, {"q": "dogs"}, {}, MiningConfig())


def test_a_recipes_data_table_is_the_mining_config(tmp_path: Path) -> None:
    from densekit.train.recipe import Recipe

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[data]\nnegatives = 2\nranks = [5, 40]\nretrievers = ["dense"]\nmargin = 0.9\n',
        encoding="utf-8",
    )
    expected = MiningConfig(negatives=2, ranks=(5, 40), retrievers=("dense",), margin=0.9)
    assert Recipe.from_toml(recipe).data == expected
    assert (expected.skip, expected.depth) == (4, 40)  # ranks 5-40: skip 4, down to 40
    assert Recipe().data == MiningConfig()  # the recipe's defaults are the config's
    assert MiningConfig.window(
        depth=40, skip=4, negatives=2, retrievers=("dense",), margin=0.9
    ) == (expected)
