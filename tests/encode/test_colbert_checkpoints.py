"""ColBERT checkpoints made elsewhere load with their projection, lengths and markers:
Stanford ColBERT's layout and PyLate's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from densekit.encode.late_interaction import LateInteractionEncoder, LateInteractionSettings
from densekit.encode.registry import resolve_model
from densekit.errors import InputError

TEXTS = ["vitamin d and bone fractures", "salmon swim up the river to spawn"]


def projection(dimension: int = 48, hidden: int = 384) -> torch.Tensor:
    return torch.randn(dimension, hidden, generator=torch.Generator().manual_seed(3)) / 20


def densekit_twin(tmp_path: Path, weight: torch.Tensor, **settings) -> LateInteractionEncoder:
    """The same weights saved by densekit: what the checkpoint must encode like."""
    base = resolve_model("minilm").location
    encoder = LateInteractionEncoder(
        base, LateInteractionSettings(dimension=len(weight), **settings)
    )
    with torch.no_grad():
        encoder.projection.weight.copy_(weight)
    encoder.save(tmp_path / "twin")
    return LateInteractionEncoder(str(tmp_path / "twin"))


def same_vectors(a: LateInteractionEncoder, b: LateInteractionEncoder) -> None:
    for query in (True, False):
        mine = a.encode_queries(TEXTS) if query else a.encode_documents(TEXTS)
        theirs = b.encode_queries(TEXTS) if query else b.encode_documents(TEXTS)
        for x, y in zip(mine, theirs, strict=True):
            np.testing.assert_allclose(x, y, atol=1e-5)


# How Stanford ColBERT and PyLate read text: [MASK] padding not attended, [CLS]/[SEP] kept.
IMPORTED = {"attend_to_masks": False, "keep_special_tokens": True}


def test_a_stanford_colbert_checkpoint_loads_its_linear_layer_and_lengths(tmp_path: Path) -> None:
    weight = projection()
    twin = densekit_twin(tmp_path, weight, query_tokens=24, document_tokens=100, **IMPORTED)
    folder = tmp_path / "stanford"
    twin.model.save_pretrained(folder)
    twin.tokenizer.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({**weights, "linear.weight": weight.contiguous()}, folder / "model.safetensors")
    metadata = {"query_maxlen": 24, "doc_maxlen": 100, "dim": 48}
    (folder / "artifact.metadata").write_text(json.dumps(metadata))
    loaded = LateInteractionEncoder(str(folder))
    assert loaded.settings.dimension == 48
    assert (loaded.settings.query_tokens, loaded.settings.document_tokens) == (24, 100)
    assert (loaded.settings.attend_to_masks, loaded.settings.keep_special_tokens) == (False, True)
    same_vectors(loaded, twin)
    colbert_reference(loaded, weight)


def colbert_reference(encoder: LateInteractionEncoder, weight: torch.Tensor) -> None:
    """ColBERT's reading, written out: a query is [CLS] [unused0] words [SEP] then [MASK]s up
    to its length, the masks unattended and all kept; a document is [CLS] [unused1] words
    [SEP], its punctuation dropped."""
    tokenizer, model = encoder.tokenizer, encoder.model
    words = tokenizer.encode(TEXTS[0], add_special_tokens=False)
    ids = [tokenizer.cls_token_id, tokenizer.convert_tokens_to_ids("[unused0]"), *words]
    ids += [tokenizer.sep_token_id]
    attended = len(ids)
    ids += [tokenizer.mask_token_id] * (encoder.settings.query_tokens - len(ids))
    mask = [1] * attended + [0] * (len(ids) - attended)
    with torch.no_grad():
        hidden = model(
            input_ids=torch.tensor([ids]), attention_mask=torch.tensor([mask])
        ).last_hidden_state[0]
    expected = torch.nn.functional.normalize(hidden @ weight.T, dim=-1).numpy()
    (query,) = encoder.encode_queries(TEXTS[:1])
    np.testing.assert_allclose(query, expected, atol=1e-5)
    text = "bone, fractures."
    document_ids = tokenizer.encode(text, add_special_tokens=False)
    (document,) = encoder.encode_documents([text])
    kept = 2 + len([t for t in document_ids if tokenizer.decode([t]) not in {",", "."}]) + 1
    assert len(document) == kept  # [CLS], the marker, the words, [SEP]


def test_a_pylate_checkpoint_loads_its_dense_module_and_marker_tokens(tmp_path: Path) -> None:
    weight = projection()
    folder = tmp_path / "pylate"
    twin = densekit_twin(tmp_path, weight, **IMPORTED)
    twin.tokenizer.add_tokens(["[Q] ", "[D] "])
    twin.model.resize_token_embeddings(len(twin.tokenizer))
    twin.model.save_pretrained(folder)
    twin.tokenizer.save_pretrained(folder)
    (folder / "1_Dense").mkdir()
    save_file({"linear.weight": weight.contiguous()}, folder / "1_Dense" / "model.safetensors")
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    config = {"query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 20}
    (folder / "config_sentence_transformers.json").write_text(json.dumps(config))
    loaded = LateInteractionEncoder(str(folder))
    assert loaded.settings.query_tokens == 20
    assert not loaded.settings.attend_to_masks and loaded.settings.keep_special_tokens
    marker = loaded.tokenizer.convert_tokens_to_ids("[Q] ")
    assert loaded._marker(query=True) == [marker] != twin._marker(query=True)
    torch.testing.assert_close(loaded.projection.weight, weight)
    (vectors,) = loaded.encode_queries(TEXTS[:1])
    assert vectors.shape == (20, 48)


def test_a_projection_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    twin = densekit_twin(tmp_path, projection())
    folder = tmp_path / "broken"
    twin.model.save_pretrained(folder)
    twin.tokenizer.save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    save_file({**weights, "linear.weight": projection(48, 100)}, folder / "model.safetensors")
    with pytest.raises(InputError, match="inconsistent"):
        LateInteractionEncoder(str(folder))


def test_a_dense_layer_with_a_bias_or_activation_is_not_a_projection(tmp_path: Path) -> None:
    twin = densekit_twin(tmp_path, projection())
    folder = tmp_path / "sentence-transformer"
    twin.model.save_pretrained(folder)
    twin.tokenizer.save_pretrained(folder)
    (folder / "2_Dense").mkdir()
    save_file(
        {"linear.weight": projection().contiguous()}, folder / "2_Dense" / "model.safetensors"
    )
    (folder / "2_Dense" / "config.json").write_text(
        json.dumps({"activation_function": "torch.nn.modules.activation.Tanh"})
    )
    modules = [
        {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(InputError, match="not a ColBERT projection"):
        LateInteractionEncoder(str(folder))


def test_fingerprints_made_before_the_reading_settings_existed_stay_valid(tmp_path: Path) -> None:
    from dataclasses import asdict

    from densekit.encode.fingerprint import settings_digest, weights_digest

    encoder = LateInteractionEncoder(resolve_model("minilm").location)
    weights = weights_digest(
        [*encoder.model.named_parameters(), *encoder.projection.named_parameters()]
    )
    earlier = {
        k: v
        for k, v in asdict(encoder.settings).items()
        if k not in ("attend_to_masks", "keep_special_tokens")
    }
    assert encoder.fingerprint == settings_digest(weights, earlier)
    imported = densekit_twin(tmp_path, projection(), **IMPORTED)
    assert imported.fingerprint != densekit_twin(tmp_path / "b", projection()).fingerprint
