"""`densekit train` as a user runs it: recipe file, a model that indexes, and mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import judged_static_collection, run_cli

pytest.importorskip("datasets")

RECIPE = """
[data]
negatives = 1
ranks = [1, 4]
margin = 0.99

[loss]
focal_gamma = 1.0

[train]
batch = 2
max_length = 64
dev_share = 0.0
"""


def test_train_with_a_recipe_then_index_with_the_model(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    collection, model, recipe = tmp_path / "c", tmp_path / "model", tmp_path / "recipe.toml"
    recipe.write_text(RECIPE, encoding="utf-8")
    judged_static_collection(capsys, tiny_beir, collection)
    train = ["train", tiny_beir, "--out", model, "--collection", collection, "--quiet"]
    code, out, err = run_cli(capsys, *train, "--config", recipe, "--epochs", "2", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["rows"] == 2 and report["recipe"]["train"]["epochs"] == 2
    assert report["recipe"]["loss"]["focal_gamma"] == 1.0
    index = ["index", tiny_beir / "corpus.jsonl", "--out", tmp_path / "trained"]
    code, _, err = run_cli(capsys, *index, "--model", model, "--quiet", "--no-cache")
    assert code == 0, err

    code, _, err = run_cli(capsys, *train, "--config", recipe)
    assert code == 2 and "pass --overwrite" in err and "Traceback" not in err
    recipe.write_text("[loss]\ncached = true\nfocal_gamma = 2\n", encoding="utf-8")
    code, _, err = run_cli(capsys, *train, "--config", recipe, "--overwrite")
    assert code == 2 and "loss.cached works with plain InfoNCE" in err and str(recipe) in err
