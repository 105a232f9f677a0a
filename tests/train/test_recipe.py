"""Training recipes: TOML into dataclasses and back, every mistake refused with its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.errors import InputError
from densekit.train.losses.mixing import Mixing
from densekit.train.mining import MiningConfig
from densekit.train.recipe import (
    LossRecipe,
    MatryoshkaRecipe,
    Recipe,
    TrainRecipe,
)

FULL = """
[data]
negatives = 5
ranks = [50, 100]
retrievers = ["dense"]
margin = 0.9

[loss]
temperature = 0.02
focal_gamma = 2

[loss.mixing]
pairs = 4
with_query = 2

[loss.matryoshka]
dims = [256, 64]
layers = true

[train]
epochs = 2
batch = 16
learning_rate = 3e-5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_recipe_parses_and_round_trips(tmp_path: Path) -> None:
    recipe = Recipe.from_toml(write(tmp_path, FULL))
    assert recipe == Recipe(
        MiningConfig(negatives=5, ranks=(50, 100), retrievers=("dense",), margin=0.9),
        LossRecipe(
            temperature=0.02,
            focal_gamma=2,
            mixing=Mixing(pairs=4, with_query=2),
            matryoshka=MatryoshkaRecipe(dims=(256, 64), layers=True),
        ),
        TrainRecipe(epochs=2, batch=16, learning_rate=3e-5),
    )
    assert Recipe.from_toml(write(tmp_path, "")) == Recipe()
    assert recipe.to_dict()["loss"]["mixing"]["pairs"] == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model]\nbase = 'x'\n", "the recipe: unknown key 'model'"),
        ("[data]\nnegs = 3\n", "[data]: unknown key 'negs'"),
        ("[data]\nranks = [100, 50]\n", "data.ranks must be [first, last]"),
        ("[data]\nranks = 5\n", "[data] ranks must be a list"),
        ("[data]\nnegatives = -1\n", "data.negatives must be a whole number of at least 0"),
        ("[data]\nmargin = 1.5\n", "data.margin must be in (0, 1]"),
        ("[loss]\ntemperature = 0\n", "loss.temperature must be a number above 0"),
        ("[loss]\ntemperature = 'warm'\n", "[loss] temperature must be a number"),
        ("[loss]\nfocal_gamma = -1\n", "loss.focal_gamma must be 0 or more"),
        ("[loss]\ncached = true\nfocal_gamma = 1\n", "loss.cached works with plain InfoNCE"),
        ("[loss.mixing]\nhardest = 1\n", "mixing.hardest must be at least 2"),
        ("[loss.mixing]\nsize = 1\n", "[loss.mixing]: unknown key 'size'"),
        ("[train]\nepochs = 0\n", "train.epochs must be a whole number of at least 1"),
        ("[loss.matryoshka]\ndims = [64, 256]\n", "must be distinct sizes, largest first"),
        ("[loss.distill]\nkind = 'kl'\n", "loss.distill.teacher must name a cross-encoder"),
        ("[loss.distill]\nteacher = 't'\nkind = 'l2'\n", "distill.kind must be margin-mse or kl"),
        (
            "[data]\nnegatives = 0\n[loss.distill]\nteacher = 't'\n",
            "set data.negatives >= 1",
        ),
        ("[loss.matryoshka]\nlayers = 'yes'\n", "loss.matryoshka.layers must be true or false"),
        ("[train]\ndev_share = 1.0\n", "train.dev_share must be in [0, 1)"),
        ("[train]\nseed = -1\n", "train.seed must be a whole number of at least 0"),
        ("[data]\nranks = [30]\n", "data.ranks must be [first, last]"),
        ("[data]\nretrievers = [1]\n", "data.retrievers must name retrievers"),
        ("[loss]\ncached = 'yes'\n", "loss.cached must be true or false"),
        (
            "[loss]\ncached = true\n[loss.matryoshka]\nlayers = true\n",
            "loss.cached does not combine with 2D Matryoshka",
        ),
        ("[loss.mixing]\npairs = 2.5\n", "mixing.pairs must be a whole number"),
        ("[loss.mixing]\nmax_query_share = 'x'\n", "mixing.max_query_share must be a number"),
        ("train = 3\n", "train must be a table"),
        ("[train\n", "not a valid TOML file"),
    ],
)
def test_mistakes_are_refused_with_their_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        Recipe.from_toml(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)
