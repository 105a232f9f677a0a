"""OpenVINO backend for sentence-transformers models: the whole pipeline (transformer, pooling,
normalisation) converted once per weights fingerprint to OpenVINO's format and compiled for the
CPU, where its kernels run MiniLM-sized encoders several times faster than eager torch.

``openvino-int8`` compresses the weights to int8 per output channel (no calibration data:
the vectors do not depend on what was encoded first) and lets the CPU plugin quantise
activations on the fly. ``--precision bf16`` computes in bfloat16 where the CPU has it natively
(AVX512-BF16 or AMX-BF16; elsewhere it says so and stays in f32, as OpenVINO would emulate
it): on such CPUs the fastest way to run a float model, with vectors within 1e-4 cosine of
fp32. Other precisions (fp16 is a GPU's) compute in f32. The tokenizer, prompts and token-budget
batching are the torch backend's, so only the forward pass changes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import threading
import warnings
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import torch

from densekit.encode.cache import default_cache_dir
from densekit.encode.fingerprint import settings_digest
from densekit.encode.model_spec import ModelSpec
from densekit.encode.onnx import SentenceEmbedding, eager_attention
from densekit.encode.precision import default_precision
from densekit.encode.sentence_transformers import SentenceTransformerEncoder
from densekit.errors import MissingDependencyError

OPENVINO_BACKENDS = {"openvino": "fp32", "openvino-int8": "int8"}  # their weights
INFERENCE_PRECISION = {"fp32": "f32", "bf16": "bf16"}
# Part of the converted file names: a change to conversion must not reuse old files.
CONVERSION_VERSION = 1
# Activations of int8 layers quantised per group of this many channels, at run time.
DYNAMIC_QUANTIZATION_GROUP = 32


class OpenVinoEncoder(SentenceTransformerEncoder):
    def __init__(
        self,
        spec: ModelSpec,
        *,
        openvino_dir: Path | None = None,
        precision: str | None = None,
        **options: object,
    ):
        try:
            import openvino
        except ImportError:
            raise MissingDependencyError("openvino", "openvino") from None
        # --precision sets the compute precision below; the torch model converted stays fp32.
        super().__init__(spec, device="cpu", precision="fp32", **options)  # type: ignore[arg-type]
        self.precision = _compute_precision(precision or default_precision())
        self.weights = OPENVINO_BACKENDS[spec.backend]
        self.openvino_dir = openvino_dir or default_cache_dir().parent / "openvino"
        core = openvino.Core()
        config: dict[str, object] = {
            "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "PERFORMANCE_HINT": "LATENCY",  # one batch at a time, on all its threads
            # f32 unless asked: OpenVINO's own default is bf16 wherever the CPU has it.
            "INFERENCE_PRECISION_HINT": INFERENCE_PRECISION[self.precision],
        }
        if self.weights == "int8":
            config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] = DYNAMIC_QUANTIZATION_GROUP
        self.compiled = core.compile_model(core.read_model(self._model_file()), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self._running = threading.Lock()  # one infer request: one batch at a time
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]

    def _embed_batch(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {name: features[name].numpy().astype(np.int64) for name in self.input_names}
        with self._running:
            outputs = self.request.infer(inputs)
            return np.array(outputs[self.compiled.output(0)], dtype=np.float32)

    @cached_property
    def _graph_key(self) -> str:
        """What the converted graph depends on: the weights, every module's settings (pooling
        and normalisation have no weights), the weight format and the converting versions."""
        import openvino

        versions = {"openvino": openvino.__version__, "conversion": CONVERSION_VERSION}
        if self.weights == "int8":
            import nncf

            versions["nncf"] = nncf.__version__
        settings = {
            "modules": self.module_settings(),
            "weights": self.weights,
            "versions": versions,
        }
        return settings_digest(self.weights_digest, settings)[:24]

    def _model_file(self) -> Path:
        import openvino

        final = self.openvino_dir / self._graph_key
        target = final / "model.xml"
        if target.exists():
            return target
        if self.weights == "int8":
            try:
                import nncf
            except ImportError:
                raise MissingDependencyError("nncf", "openvino") from None
        model = self._convert()
        if self.weights == "int8":
            # nncf reports on stdout, which belongs to the command (--json output, pipes).
            nncf.set_log_level(logging.WARNING)
            with contextlib.redirect_stdout(sys.stderr):
                model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
        # Both files written in a private folder, published by one rename; a process that
        # lost the race to another keeps the winner's (the same graph) and drops its own.
        self.openvino_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=self.openvino_dir))
        openvino.save_model(model, str(staging / "model.xml"), compress_to_fp16=False)
        try:
            os.rename(staging, final)
        except OSError:
            if not target.exists():
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _convert(self):  # -> openvino.Model
        import openvino

        features = self._features(["an example sentence to trace the graph", "another"])
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]
        module = SentenceEmbedding(self.model, names).eval()
        with eager_attention(self.model), torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on branches fixed for inputs
            model = openvino.convert_model(
                module,
                example_input=tuple(features[name] for name in names),
                # Batch and length dynamic; the forward's inputs are positional, named below.
                input=[([-1, -1], openvino.Type.i64) for _ in names],
            )
        for port, name in zip(model.inputs, names, strict=True):
            port.get_tensor().set_names({name})
        return model


def _compute_precision(wanted: str | None) -> str:
    """bf16 when asked and the CPU computes it natively; fp32 otherwise (said when bf16 was
    asked: OpenVINO would emulate it on other AVX-512 CPUs, slower than f32)."""
    if (wanted or "").strip().lower() != "bf16":
        return "fp32"
    if _native_bf16():
        return "bf16"
    print(
        "this CPU has no native bfloat16 (AVX512-BF16 or AMX-BF16): the OpenVINO backend "
        "computes in fp32",
        file=sys.stderr,
    )
    return "fp32"


@lru_cache(maxsize=1)
def _native_bf16() -> bool:
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = set(cpuinfo.read_text(encoding="utf-8", errors="replace").split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})
