"""--precision: bf16/fp16 run the same model in half the memory; fp32 stays the default; the
fingerprint does not change, so a collection encoded one way is searched another."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from densekit.encode import load_encoder, resolve_model
from densekit.encode.precision import resolve_precision, use_precision, using_precision
from densekit.errors import InputError

TEXTS = ["Vitamin D deficiency and bone fractures.", "Statins lower cholesterol in adults."]


def test_fp32_is_the_default_and_auto_picks_fp16_only_on_a_cuda_gpu() -> None:
    assert resolve_precision(None, "cpu") == "fp32"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("auto", "cuda:1") == "fp16"
    assert resolve_precision("auto", "mps") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"


def test_fp16_on_a_cpu_and_unknown_precisions_are_refused() -> None:
    with pytest.raises(InputError, match="fp16 runs models on a GPU; on the CPU use bf16"):
        resolve_precision("fp16", "cpu")
    with pytest.raises(InputError, match="unknown precision 'fp8'"):
        use_precision("fp8")


def test_bf16_encodes_as_fp32_does_with_the_same_fingerprint() -> None:
    fp32 = load_encoder("minilm")
    with using_precision("bf16"):
        bf16 = load_encoder("minilm")
    assert bf16.precision == "bf16" and next(bf16.model.parameters()).dtype == torch.bfloat16
    assert load_encoder("minilm").precision == "fp32"  # the block's default is gone
    assert bf16.fingerprint == fp32.fingerprint
    full, half = fp32.encode_documents(TEXTS), bf16.encode_documents(TEXTS)
    assert not np.array_equal(full, half)  # computed in bf16, not fp32
    assert np.min(np.sum(full * half, axis=1)) > 0.999
    # Half-precision vectors are cached apart from the fp32 ones.
    from densekit.encode.cache import cache_name

    assert cache_name(bf16) == f"{fp32.fingerprint}-bf16" and cache_name(fp32) == fp32.fingerprint


def test_the_int8_and_onnx_backends_keep_their_own_precision() -> None:
    with using_precision("bf16"):
        int8 = load_encoder("minilm", backend="torch-int8")
        vectors = int8.encode_documents(TEXTS)
    assert int8.precision == "fp32" and vectors.shape == (2, 384)


def test_a_cross_encoder_scores_in_bf16_as_in_fp32(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder

    from densekit.retrieve.rerankers import CrossEncoderReranker

    model = CrossEncoder(resolve_model("minilm").location, num_labels=1, device="cpu")
    model.save_pretrained(str(tmp_path / "reranker"))
    pairs = [(TEXTS[0], TEXTS[0]), (TEXTS[0], TEXTS[1])]
    fp32 = CrossEncoderReranker(str(tmp_path / "reranker")).score(pairs)
    with using_precision("bf16"):
        bf16 = CrossEncoderReranker(str(tmp_path / "reranker"))
    assert next(bf16.model.model.parameters()).dtype == torch.bfloat16
    np.testing.assert_allclose(bf16.score(pairs), fp32, atol=0.05)


def test_a_bf16_build_is_searched_by_the_next_process_in_fp32(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": f"d{n}", "text": text}) + "\n" for n, text in enumerate(TEXTS))
    )

    def densekit(*args: object) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "densekit.cli.main", *map(str, args)]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    built = densekit("index", corpus, "--out", tmp_path / "c", "--retriever", "dense",
                     "--precision", "bf16", "--quiet", "--no-cache")  # fmt: skip
    assert built.returncode == 0, built.stderr
    found = densekit("search", tmp_path / "c", "cholesterol", "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"][0]["id"] == "d1"
    refused = densekit("search", tmp_path / "c", "cholesterol", "--precision", "fp16")
    assert refused.returncode == 2 and "fp16 runs models on a GPU" in refused.stderr
