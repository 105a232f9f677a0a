"""ONNX Runtime backends against the torch backend, with the real MiniLM."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from backend_reference import BACKEND_TEXTS, cosines, torch_reference
from required import require

from densekit.encode import load_encoder

pytestmark = pytest.mark.slow
require("onnxruntime")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return torch_reference()


@pytest.fixture(scope="module")
def onnx_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx")


def test_fp32_matches_torch(onnx_dir: Path, reference: np.ndarray) -> None:
    encoder = load_encoder("minilm", backend="onnx", onnx_dir=onnx_dir)
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.9999
    exported = next(onnx_dir.rglob("model-*-fp32.onnx"))
    stamp = exported.stat().st_mtime_ns
    load_encoder("minilm", backend="onnx", onnx_dir=onnx_dir)  # reuses the export
    assert exported.stat().st_mtime_ns == stamp


def test_int8_stays_close_and_is_another_fingerprint(onnx_dir: Path, reference) -> None:
    encoder = load_encoder("minilm", backend="onnx-int8", onnx_dir=onnx_dir)
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.97
    fingerprints = {
        load_encoder("minilm").fingerprint,
        encoder.fingerprint,
        load_encoder("minilm", backend="onnx", onnx_dir=onnx_dir).fingerprint,
    }
    assert len(fingerprints) == 3
    # --precision is for torch models; the int8 graph keeps its own.
    asked = load_encoder("minilm", backend="onnx-int8", onnx_dir=onnx_dir, precision="bf16")
    assert asked.precision == "int8"


def test_a_model_the_fusion_does_not_know_runs_unfused_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reference: np.ndarray
) -> None:
    from onnxruntime.transformers import optimizer

    def unknown_architecture(*args: object, **kwargs: object) -> None:
        raise ValueError("no fusion for this graph")

    monkeypatch.setattr(optimizer, "optimize_model", unknown_architecture)
    with pytest.warns(UserWarning, match="fusion does not apply.*no fusion for this graph"):
        encoder = load_encoder("minilm", backend="onnx", onnx_dir=tmp_path)
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.9999
