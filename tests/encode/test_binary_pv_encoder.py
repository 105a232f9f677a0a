"""The Binary PV encoder: names, inference, and what it refuses."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import topic_documents

from densekit.encode import load_encoder, resolve_model
from densekit.encode.binary_pv import terms
from densekit.errors import InputError
from densekit.train.binary_pv import BinaryPVTraining, train_binary_pv


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bpv") / "model"
    settings = BinaryPVTraining(bits=16, epochs=30, batch=32, min_count=1, ngrams=2)
    train_binary_pv(topic_documents(topics=3, per_topic=16), out, settings, progress=False)
    return out


def test_terms_are_unicode_words_lowercased_with_pairs() -> None:
    assert terms("Vitamin-D and ÉTÉ, 2024!", 1) == ["vitamin", "d", "and", "été", "2024"]
    assert terms("a b c", 2) == ["a", "b", "c", "a b", "b c"]


def test_spec_names_the_folder_absolutely(model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(model.parent)
    spec = resolve_model("bpv:model")
    assert spec.name == f"bpv:{model}" and spec.backend == "bpv"
    assert resolve_model("bpv:model#output=codes") == spec


def test_inferred_parameters_do_not_depend_on_the_batch(model: Path) -> None:
    encoder = load_encoder(f"bpv:{model}")
    texts = [d.content for d in topic_documents(topics=3, per_topic=100, seed=5)]  # 2 blocks
    together = encoder.model.infer(texts)
    for index in (0, 255, 256, 299):
        alone = encoder.model.infer([texts[index]])
        assert np.allclose(together[index], alone[0], atol=1e-5)
    assert encoder.encode_queries([]).shape == (0, 16)


def test_fingerprint_follows_the_weights(model: Path, tmp_path: Path) -> None:
    first = load_encoder(f"bpv:{model}").fingerprint
    assert load_encoder(f"bpv:{model}").fingerprint == first
    settings = BinaryPVTraining(bits=16, epochs=2, min_count=1, ngrams=2, seed=1)
    train_binary_pv(topic_documents(3, 16), tmp_path / "other", settings, progress=False)
    assert load_encoder(f"bpv:{tmp_path / 'other'}").fingerprint != first


def test_bad_names_and_folders_get_clear_errors(model: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no model folder"):
        resolve_model("bpv:")
    with pytest.raises(InputError, match="train-bpv CORPUS --out"):
        resolve_model(f"bpv:{tmp_path / 'missing'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a trained Binary PV model"):
        load_encoder(f"bpv:{tmp_path / 'empty'}")
    with pytest.raises(InputError, match="output must be one of codes, real"):
        resolve_model(f"bpv:{model}#output=floats")
    with pytest.raises(InputError, match="unknown option 'bits'"):
        resolve_model(f"bpv:{model}#bits=8")
    with pytest.raises(InputError, match="--real-dim"):
        load_encoder(f"bpv:{model}#output=real")


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("config.json", "{not json", "not a Binary PV model config"),
        ("config.json", "[1, 2]", "not a Binary PV model config"),
        ("model.safetensors", "garbage", "unreadable or not this model's weights"),
        ("vocabulary.txt", "only-one-term\t1\n", "unreadable or not this model's weights"),
    ],
)
def test_a_damaged_model_folder_is_named(
    model: Path, tmp_path: Path, name: str, content: str, needle: str
) -> None:
    damaged = tmp_path / "damaged"
    shutil.copytree(model, damaged)
    (damaged / name).write_text(content)
    with pytest.raises(InputError, match=needle):
        load_encoder(f"bpv:{damaged}")
