"""The OpenVINO backends against the torch backend, with the real MiniLM."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from backend_reference import BACKEND_TEXTS, cosines, torch_reference
from required import require

from densekit.encode import load_encoder
from densekit.encode.openvino import _native_bf16
from densekit.errors import MissingDependencyError

pytestmark = pytest.mark.slow
require("openvino")
require("nncf")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return torch_reference()


@pytest.fixture(scope="module")
def openvino_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("openvino")


def test_fp32_matches_torch_and_the_conversion_is_reused(openvino_dir: Path, reference) -> None:
    encoder = load_encoder("minilm", backend="openvino", openvino_dir=openvino_dir)
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.9999
    # One text alone and in a batch: padding must not change a vector.
    alone = encoder.encode_documents(BACKEND_TEXTS[:1])
    assert cosines(alone, encoder.encode_documents(BACKEND_TEXTS)[:1]).min() > 0.9999
    [converted] = openvino_dir.glob("*/model.xml")
    stamp = converted.stat().st_mtime_ns
    load_encoder("minilm", backend="openvino", openvino_dir=openvino_dir)
    assert converted.stat().st_mtime_ns == stamp
    assert not list(openvino_dir.glob(".*"))  # no staging folder left


def test_int8_stays_close_and_is_another_fingerprint(
    openvino_dir: Path, reference, capfd: pytest.CaptureFixture[str]
) -> None:
    encoder = load_encoder("minilm", backend="openvino-int8", openvino_dir=openvino_dir)
    # The weight compression's reports stay off stdout, which is the command's (--json).
    assert capfd.readouterr().out == ""
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.97
    fingerprints = {
        load_encoder("minilm").fingerprint,
        encoder.fingerprint,
        load_encoder("minilm", backend="openvino", openvino_dir=openvino_dir).fingerprint,
    }
    assert len(fingerprints) == 3


def test_bf16_compute_stays_within_rounding_of_fp32(openvino_dir: Path, reference) -> None:
    # bf16 where the CPU has it natively, f32 elsewhere: close to fp32 either way.
    encoder = load_encoder(
        "minilm", backend="openvino", openvino_dir=openvino_dir, precision="bf16"
    )
    assert encoder.precision == ("bf16" if _native_bf16() else "fp32")
    assert cosines(encoder.encode_documents(BACKEND_TEXTS), reference).min() > 0.999


def test_without_openvino_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(MissingDependencyError, match=r"densekit\[openvino\]"):
        load_encoder("minilm", backend="openvino")
