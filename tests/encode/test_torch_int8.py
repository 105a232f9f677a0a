"""The torch int8 backend: the quantised layer's maths, and the real MiniLM against fp32."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from densekit.encode import load_encoder
from densekit.encode.torch_int8 import Int8Linear, quantization_engine, quantize_linear_layers

try:
    ENGINE, REDUCE_RANGE = quantization_engine()
except Exception:  # pragma: no cover - non-x86 machines
    pytest.skip("no x86 int8 engine on this machine", allow_module_level=True)


def test_int8_linear_matches_float_linear() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 48)
    inputs = torch.randn(3, 5, 64)
    quantized = Int8Linear(linear, engine=ENGINE, reduce_range=REDUCE_RANGE)
    with torch.inference_mode():
        expected, actual = linear(inputs), quantized(inputs)
    assert actual.shape == expected.shape == (3, 5, 48)
    assert actual.dtype == torch.float32
    relative = (actual - expected).norm() / expected.norm()
    assert relative < 0.02


def test_a_row_of_outliers_does_not_cost_the_others_precision() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(32, 8)
    with torch.no_grad():
        linear.weight[0] *= 1000.0  # per-tensor scales would flatten rows 1..7 to a few levels
    inputs = torch.randn(16, 32)
    quantized = Int8Linear(linear, engine=ENGINE, reduce_range=REDUCE_RANGE)
    with torch.inference_mode():
        expected, actual = linear(inputs)[:, 1:], quantized(inputs)[:, 1:]
    # Activation quantisation still sees the big row's outputs only through the inputs.
    assert (actual - expected).norm() / expected.norm() < 0.05


def test_quantize_replaces_every_linear_layer() -> None:
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Sequential(torch.nn.Linear(8, 4))
    )
    assert quantize_linear_layers(model, engine=ENGINE, reduce_range=REDUCE_RANGE) == 2
    assert not any(type(m) is torch.nn.Linear for m in model.modules())
    with torch.inference_mode():
        assert model(torch.randn(2, 8)).shape == (2, 4)


@pytest.mark.slow
def test_minilm_int8_stays_close_to_fp32_and_is_another_fingerprint() -> None:
    texts = [
        "Vitamin D deficiency is associated with a higher risk of fractures.",
        "The stock market fell sharply after the announcement.",
        "short",
        "A much longer passage about protein folding, " * 20,
    ]
    reference_encoder = load_encoder("minilm")
    reference = reference_encoder.encode_documents(texts)
    encoder = load_encoder("minilm", backend="torch-int8")
    vectors = encoder.encode_documents(texts)
    cosines = (vectors * reference).sum(axis=1) / np.linalg.norm(vectors, axis=1)
    assert cosines.min() > 0.97
    assert encoder.fingerprint != reference_encoder.fingerprint
    assert encoder.dimension == reference_encoder.dimension
