"""The MVP model: scores that depend on the set of candidates, not their order, on every kind
of backbone; and model folders that are complete or refused by name."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_llms import bpe_tokenizer, tiny_model

from densekit.encode.multiview import AnchorDecoder, MultiViewShape, orthogonality_loss
from densekit.encode.multiview_folder import load_multiview, new_multiview, save_multiview
from densekit.errors import InputError

QUERY = "vitamin D and bone health"
PASSAGES = [
    "Vitamin D helps the body absorb calcium for strong bones.",
    "Dogs are loyal companions.",
    "Low vitamin D levels are linked to fractures in older adults.",
    "Rivers carry fish to the sea.",
    "Calcium and vitamin D supplements in postmenopausal women.",
    "A cat sat on the mat.",
    "Bone density falls with age.",
]


@pytest.fixture(scope="module")
def minilm_mvp() -> object:
    torch.manual_seed(0)
    return new_multiview("minilm", views=3, max_length=64).eval()


def test_the_same_candidates_in_any_order_get_the_same_scores(minilm_mvp) -> None:
    base = minilm_mvp.score_list(QUERY, PASSAGES, batch=3)
    rng = random.Random(0)
    for _ in range(5):
        order = list(range(len(PASSAGES)))
        rng.shuffle(order)
        shuffled = minilm_mvp.score_list(QUERY, [PASSAGES[i] for i in order], batch=3)
        assert np.array_equal(shuffled, base[order])  # bit for bit, not just close
    # More candidates than one batch holds are read in batches, none left out.
    assert np.allclose(minilm_mvp.score_list(QUERY, PASSAGES, batch=32), base, atol=1e-5)
    assert minilm_mvp.score_list(QUERY, []).shape == (0,)


def test_decoding_is_blind_to_order_and_padding() -> None:
    torch.manual_seed(0)
    shape = MultiViewShape(4, 16, 4, 2, 64, "encoder")
    decoder = AnchorDecoder(shape).eval()
    relevance = torch.randn(1, 6, 4, 16)
    present = torch.ones(1, 6, dtype=torch.bool)
    with torch.no_grad():
        anchors = decoder(relevance, present)
        permutation = torch.randperm(6)
        assert torch.allclose(decoder(relevance[:, permutation], present), anchors, atol=1e-6)
        # Two lists of different lengths padded into one batch decode as they do alone.
        padded = torch.cat([relevance, torch.randn(1, 6, 4, 16)])
        padded[0, 4:] = 99.0  # padding that must not be read
        mask = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
        alone = decoder(relevance[:, :4], present[:, :4])
        assert torch.allclose(decoder(padded, mask)[0], alone[0], atol=1e-5)


def test_orthogonality_loss_is_zero_for_distinct_views_and_one_for_copies() -> None:
    distinct = torch.eye(3, 8)[None]
    copies = torch.ones(1, 3, 8)
    assert float(orthogonality_loss(distinct)) == pytest.approx(0.0)
    assert float(orthogonality_loss(copies)) == pytest.approx(1.0)
    assert float(orthogonality_loss(torch.ones(1, 1, 8))) == 0.0


def test_a_saved_model_reloads_and_an_incomplete_folder_is_refused(
    minilm_mvp, tmp_path: Path
) -> None:
    folder = tmp_path / "mvp"
    save_multiview(minilm_mvp, folder)
    again = load_multiview(folder)
    assert np.allclose(
        again.score_list(QUERY, PASSAGES), minilm_mvp.score_list(QUERY, PASSAGES), atol=1e-5
    )
    with pytest.raises(InputError, match=r"not an MVP model \(no mvp\.json\)"):
        load_multiview(tmp_path)
    config = json.loads((folder / "mvp.json").read_text())
    (folder / "mvp.json").write_text(json.dumps({**config, "views": 5}))
    with pytest.raises(InputError, match="not the decoder of this model \\(5 views"):
        load_multiview(folder)
    (folder / "mvp.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable MVP model config"):
        load_multiview(folder)
    (folder / "mvp.json").write_text(json.dumps(config))
    (folder / "decoder.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(InputError, match=r"decoder\.safetensors: not the decoder of this model"):
        load_multiview(folder)
    (folder / "decoder.safetensors").unlink()
    with pytest.raises(InputError, match="without its decoder"):
        load_multiview(folder)


def test_t5_and_decoder_llm_backbones_read_the_same_way(tmp_path: Path) -> None:
    import transformers

    t5 = tmp_path / "t5"
    vocabulary = bpe_tokenizer(t5)
    config = transformers.T5Config(
        vocab_size=vocabulary, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4
    )
    torch.manual_seed(0)
    transformers.T5EncoderModel(config).save_pretrained(str(t5))
    llama = tiny_model(tmp_path / "llama", "llama")
    for base, kind in ((str(t5), "t5-encoder"), (f"llm:{llama}", "decoder-llm")):
        model = new_multiview(base, views=2, max_length=48).eval()
        assert model.shape.backbone == kind
        scores = model.score_list(QUERY, PASSAGES, batch=2)
        assert np.array_equal(model.score_list(QUERY, PASSAGES[::-1], batch=2), scores[::-1])
        save_multiview(model, tmp_path / f"saved-{kind}")
        reloaded = load_multiview(tmp_path / f"saved-{kind}")
        assert np.allclose(reloaded.score_list(QUERY, PASSAGES, batch=2), scores, atol=1e-5)
    with pytest.raises(InputError, match="is a causal LM; name it llm:"):
        new_multiview(str(llama), views=2, max_length=48)
    with pytest.raises(InputError, match="drop #dtype=bfloat16"):
        new_multiview(f"llm:{llama}#dtype=bfloat16", views=2, max_length=48)


@pytest.mark.usefixtures("bundled_smollm2")
@pytest.mark.slow
def test_the_bundled_smollm2_is_an_mvp_backbone(tmp_path: Path) -> None:
    from required import require

    require("gguf")
    model = new_multiview("llm:smollm2", views=2, max_length=48).eval()
    assert (model.shape.backbone, model.shape.width) == ("decoder-llm", 576)
    scores = model.score_list(QUERY, PASSAGES[:3])
    save_multiview(model, tmp_path / "mvp")
    assert np.allclose(load_multiview(tmp_path / "mvp").score_list(QUERY, PASSAGES[:3]), scores)
