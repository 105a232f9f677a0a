"""`densekit train` as a user runs it: recipe file, a model that indexes, and mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import kill_when
from required import require
from test_cli import judged_static_collection, run_cli

require("datasets")

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
    cut = ["--layers", "3", "--dim", "128", "--retriever", "dense", "--overwrite"]
    code, _, err = run_cli(capsys, *index, "--model", model, *cut, "--quiet", "--no-cache")
    assert code == 0, err
    code, out, err = run_cli(capsys, "info", tmp_path / "trained", "--json")
    assert json.loads(out)["model"]["dim"] == 128, err

    code, _, err = run_cli(capsys, *train, "--config", recipe)
    assert code == 2 and "pass --overwrite" in err and "Traceback" not in err
    recipe.write_text("[loss]\ncached = true\nfocal_gamma = 2\n", encoding="utf-8")
    code, _, err = run_cli(capsys, *train, "--config", recipe, "--overwrite")
    assert code == 2 and "loss.cached works with plain InfoNCE" in err and str(recipe) in err


@pytest.mark.slow
def test_an_interrupted_training_resumes_from_its_checkpoint(
    capsys, tiny_beir: Path, tmp_path: Path
) -> None:
    collection, model = tmp_path / "c", tmp_path / "model"
    judged_static_collection(capsys, tiny_beir, collection)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE.replace("batch = 2", "batch = 1\ncheckpoint_steps = 1\nepochs = 3"))
    train = ["train", tiny_beir, "--out", model, "--collection", collection, "--config", recipe]
    checkpoints = tmp_path / ".model.checkpoints"
    kill_when([*train, "--quiet"], lambda: any(checkpoints.glob("checkpoint-*/trainer_state.json")))
    assert not model.exists() and any(checkpoints.glob("checkpoint-*"))
    code, out, err = run_cli(capsys, *train, "--quiet", "--json")
    assert code == 0, err
    assert "checkpoint-" in json.loads(out)["resumed_from"]
    assert (model / "densekit_training.json").exists() and not checkpoints.exists()
