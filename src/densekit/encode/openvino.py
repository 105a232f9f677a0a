"""OpenVINO backend for sentence-transformers models: the whole pipeline (transformer, pooling,
normalisation) converted once per weights fingerprint to OpenVINO's format and compiled for the
CPU, where its kernels run MiniLM-sized encoders several times faster than eager torch.

``openvino-int8`` compresses the weights to int8 per output channel (no calibration data:
the vectors do not depend on what was encoded first) and lets the CPU plugin quantise
activations on the fly. ``--precision bf16`` computes in bfloat16 where the CPU has it natively
(AVX512-BF16, AMX; elsewhere OpenVINO stays in f32): on such CPUs the fastest way to run a
float model, with vectors within 1e-4 cosine of fp32. The tokenizer, prompts and token-budget
batching are the torch backend's, so only the forward pass changes.
"""

from __future__ import annotations

import os
import warnings
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from densekit.encode.cache import default_cache_dir
from densekit.encode.fingerprint import weights_digest
from densekit.encode.model_spec import ModelSpec
from densekit.encode.onnx import SentenceEmbedding, eager_attention
from densekit.encode.precision import resolve_precision
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
        self.precision = resolve_precision(precision, "cpu")
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
        self.input_names = [port.get_any_name() for port in self.compiled.inputs]

    def _embed_batch(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {name: features[name].numpy().astype(np.int64) for name in self.input_names}
        outputs = self.request.infer(inputs)
        return np.asarray(outputs[self.compiled.output(0)], dtype=np.float32)

    @cached_property
    def _weights(self) -> str:
        return weights_digest(self.model.state_dict().items())[:24]

    def _model_file(self) -> Path:
        import openvino

        folder = self.openvino_dir / self._weights
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"model-v{CONVERSION_VERSION}-{self.weights}.xml"
        if target.exists():
            return target
        model = self._convert()
        if self.weights == "int8":
            import nncf

            model = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_SYM)
        # Written under a private name, then renamed: the weights file first, as the .xml
        # names it and its presence means the conversion is complete.
        staging = folder / f".{target.stem}.{os.getpid()}.tmp.xml"
        openvino.save_model(model, str(staging), compress_to_fp16=False)
        os.replace(staging.with_suffix(".bin"), target.with_suffix(".bin"))
        os.replace(staging, target)
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
