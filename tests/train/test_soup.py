"""Model soups: uniform and greedy weight averaging, and refusing models of other shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from densekit.encode import resolve_model
from densekit.errors import InputError
from densekit.train.soup import SOUP_FILE, average_weights, check_same_architecture, soup_models


def tiny_model(folder: Path, tensors: dict[str, torch.Tensor]) -> Path:
    folder.mkdir(parents=True)
    save_file(tensors, str(folder / "model.safetensors"))
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return folder


def test_a_uniform_soup_is_the_mean_of_each_float_tensor(tmp_path: Path) -> None:
    ids = torch.arange(4)
    a = tiny_model(tmp_path / "a", {"w": torch.tensor([1.0, 2.0]), "ids": ids})
    (a / "densekit_training.json").write_text("{}", encoding="utf-8")
    b = tiny_model(tmp_path / "b", {"w": torch.tensor([3.0, 6.0]), "ids": ids})
    c = tiny_model(tmp_path / "c", {"w": torch.tensor([2.0, 1.0]), "ids": ids})
    report = soup_models([a, b, c], tmp_path / "soup")
    weights = load_file(str(tmp_path / "soup" / "model.safetensors"))
    torch.testing.assert_close(weights["w"], torch.tensor([2.0, 3.0]))
    assert torch.equal(weights["ids"], ids)
    assert (tmp_path / "soup" / "config.json").exists()
    assert not (tmp_path / "soup" / "densekit_training.json").exists()  # a's card, not the soup's
    assert json.loads((tmp_path / "soup" / SOUP_FILE).read_text())["used"] == report.used
    half = average_weights([a / "model.safetensors", b / "model.safetensors"])
    assert half["w"].dtype == torch.float32
    torch.testing.assert_close(half["w"], torch.tensor([2.0, 4.0]))


def test_models_of_other_shapes_are_refused(tmp_path: Path) -> None:
    a = tiny_model(tmp_path / "a", {"w": torch.zeros(2)})
    wide = tiny_model(tmp_path / "wide", {"w": torch.zeros(3)})
    other = tiny_model(tmp_path / "other", {"v": torch.zeros(2)})
    with pytest.raises(InputError, match=r"tensor 'w' in model.safetensors is \(3,\)"):
        check_same_architecture([a, wide])
    with pytest.raises(InputError, match="one architecture"):
        soup_models([a, other], tmp_path / "soup")
    with pytest.raises(InputError, match="at least two models"):
        soup_models([a], tmp_path / "soup")
    with pytest.raises(InputError, match="pass --dev"):
        soup_models([a, a], tmp_path / "soup", greedy=True)
    with pytest.raises(InputError, match="no such model folder"):
        soup_models([a, tmp_path / "missing"], tmp_path / "soup")
    assert not (tmp_path / "soup").exists()


def test_a_greedy_soup_leaves_out_an_ingredient_that_hurts(tiny_beir: Path, tmp_path: Path) -> None:
    base = Path(resolve_model("minilm").location)
    good = tmp_path / "good"
    shutil.copytree(base, good)
    broken = tmp_path / "broken"  # the same architecture with scrambled weights
    shutil.copytree(base, broken)
    weights = load_file(str(broken / "model.safetensors"))
    generator = torch.Generator().manual_seed(0)
    scrambled = {
        name: torch.randn(t.shape, generator=generator) if t.is_floating_point() else t
        for name, t in weights.items()
    }
    save_file(scrambled, str(broken / "model.safetensors"))
    report = soup_models(
        [broken, good], tmp_path / "soup", greedy=True, dev=tiny_beir, dev_split="test"
    )
    assert report.used == [str(good)]
    assert report.scores[str(good)] > report.scores[str(broken)]
    assert report.soup_score == pytest.approx(report.scores[str(good)], abs=1e-4)
    soup = load_file(str(tmp_path / "soup" / "model.safetensors"))
    assert all(
        torch.equal(soup[n], t) for n, t in load_file(str(good / "model.safetensors")).items()
    )
