"""ONNX Runtime backends for sentence-transformers models: fp32, and int8 with dynamic
per-channel quantisation of the weights.

The model is exported once per weights fingerprint into the cache folder and reused; the
tokenizer, prompts and token-budget batching are those of the torch backend, so only the
forward pass changes.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from densekit.encode.cache import default_cache_dir
from densekit.encode.cpu import has_vnni
from densekit.encode.model_spec import ModelSpec
from densekit.encode.sentence_transformers import SentenceTransformerEncoder
from densekit.errors import MissingDependencyError

ONNX_BACKENDS = {"onnx": "fp32", "onnx-int8": "int8"}
# Part of the exported file names: a change to export or fusion must not reuse old files.
EXPORT_VERSION = 2


class SentenceEmbedding(torch.nn.Module):
    """The whole sentence-transformers pipeline (transformer, pooling, ...) as one module."""

    def __init__(self, model: torch.nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return self.model(dict(zip(self.names, tensors, strict=True)))["sentence_embedding"]


class OnnxEncoder(SentenceTransformerEncoder):
    def __init__(
        self,
        spec: ModelSpec,
        *,
        onnx_dir: Path | None = None,
        precision: str | None = None,  # taken and set aside: the graph has its own
        **options: object,
    ):
        try:
            import onnxruntime
        except ImportError:
            raise MissingDependencyError("onnxruntime", "onnx") from None
        # Their own precision (int8), whatever --precision says for torch models.
        super().__init__(spec, device="cpu", precision="fp32", **options)  # type: ignore[arg-type]
        self.precision = ONNX_BACKENDS[spec.backend]
        self.onnx_dir = onnx_dir or default_cache_dir().parent / "onnx"
        path = self._model_file()
        session_options = onnxruntime.SessionOptions()
        session_options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session_options.intra_op_num_threads = torch.get_num_threads()
        self.session = onnxruntime.InferenceSession(
            str(path), session_options, providers=["CPUExecutionProvider"]
        )
        self.input_names = [node.name for node in self.session.get_inputs()]

    def _embed_batch(self, features: dict[str, torch.Tensor]) -> np.ndarray:
        inputs = {name: features[name].numpy().astype(np.int64) for name in self.input_names}
        return np.asarray(self.session.run(None, inputs)[0], dtype=np.float32)

    @cached_property
    def _weights(self) -> str:
        return self.weights_digest[:24]

    def _model_file(self) -> Path:
        folder = self.onnx_dir / self._weights
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / f"model-v{EXPORT_VERSION}-fp32.onnx"
        if not fp32.exists():
            self._export(fp32)
        if self.precision == "fp32":
            return fp32
        int8 = folder / f"model-v{EXPORT_VERSION}-int8{'' if has_vnni() else '-7bit'}.onnx"
        if not int8.exists():
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            staging = int8.with_name(f".{int8.name}.{os.getpid()}.tmp")
            # Per-channel scales keep retrieval quality; one scale per tensor does not.
            with _quiet_root_logger():
                quantize_dynamic(
                    fp32,
                    staging,
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    # 7-bit weights avoid saturation on CPUs without VNNI.
                    reduce_range=not has_vnni(),
                    # Fused ops are outside shape inference's reach; their outputs are float.
                    extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                )
            os.replace(staging, int8)
        return int8

    def _export(self, target: Path) -> None:
        features = self._features(["an example sentence to trace the graph", "another"])
        names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in features]
        traced = target.with_name(f".{target.name}.{os.getpid()}.traced")
        dynamic = {name: {0: "batch", 1: "tokens"} for name in names}
        # Eager attention exports the pattern ONNX Runtime fuses into its Attention kernel;
        # the tracer's warnings are about branches that are constant for these inputs.
        with eager_attention(self.model), torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                SentenceEmbedding(self.model, names).eval(),
                tuple(features[name] for name in names),
                str(traced),
                input_names=names,
                output_names=["sentence_embedding"],
                dynamic_axes={**dynamic, "sentence_embedding": {0: "batch"}},
                opset_version=17,
                dynamo=False,
            )
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        config = getattr(getattr(self.model[0], "auto_model", None), "config", None)
        _fuse_transformer_ops(
            traced,
            staging,
            num_heads=getattr(config, "num_attention_heads", 0),
            hidden_size=getattr(config, "hidden_size", 0),
        )
        traced.unlink(missing_ok=True)
        os.replace(staging, target)


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """The quantizer logs advice through the root logger on every call."""
    root = logging.getLogger()
    previous = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(previous)


@contextmanager
def eager_attention(model: torch.nn.Module) -> Iterator[None]:
    backbone = getattr(model[0], "auto_model", None)
    previous = getattr(getattr(backbone, "config", None), "_attn_implementation", None)
    switch = getattr(backbone, "set_attn_implementation", None)
    if switch is None or previous is None:
        yield
        return
    switch("eager")
    try:
        yield
    finally:
        switch(previous)


def _fuse_transformer_ops(source: Path, target: Path, *, num_heads: int, hidden_size: int) -> None:
    """ONNX Runtime's transformer optimizer (attention, layer norm, GELU fusion); the plain
    graph is kept where it does not apply. Attention fuses only when the head count and width
    are given: the optimizer's guess from the graph fails on current exports."""
    try:
        from onnxruntime.transformers import optimizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            optimized = optimizer.optimize_model(
                str(source), model_type="bert", num_heads=num_heads, hidden_size=hidden_size
            )
        optimized.save_model_to_file(str(target))
    except Exception as error:  # the optimizer knows some architectures only
        # Said, not silent: the unfused graph gives the same vectors, more slowly.
        warnings.warn(
            f"ONNX Runtime's transformer fusion does not apply to this model ({error}); "
            "the ONNX backend runs its plain graph, which is slower",
            stacklevel=2,
        )
        shutil.copyfile(source, target)
