"""Torch backend with int8 linear layers: weights quantised per output channel, activations
quantised per batch at run time (dynamic quantisation), everything else in float32.

The linear layers are ~90% of a small transformer's arithmetic; on CPUs with VNNI they run on
int8 dot-product instructions at several times the float32 rate. Attention, layer norms and
pooling stay float32 in torch, whose kernels for them are the fastest on CPU.
"""

from __future__ import annotations

import platform
import warnings
from functools import cache

import torch

from densekit.encode.cpu import has_vnni
from densekit.encode.model_spec import ModelSpec
from densekit.encode.sentence_transformers import SentenceTransformerEncoder
from densekit.errors import InputError


class Int8Linear(torch.nn.Module):
    """``nn.Linear`` with int8 per-channel weights and dynamically quantised activations."""

    def __init__(self, linear: torch.nn.Linear, *, engine: str, reduce_range: bool) -> None:
        super().__init__()
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.reduce_range = reduce_range
        weight = linear.weight.detach().float()
        # Symmetric scales per output row: outlier rows do not cost the others their precision.
        scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        zero_points = torch.zeros(weight.shape[0], dtype=torch.long)
        with warnings.catch_warnings():
            # Quantised tensor types are deprecated in favour of torchao; the kernels remain.
            warnings.simplefilter("ignore", UserWarning)
            quantized = torch.quantize_per_channel(
                weight, scales.double(), zero_points, 0, torch.qint8
            )
        bias = None if linear.bias is None else linear.bias.detach().float()
        previous = torch.backends.quantized.engine
        torch.backends.quantized.engine = engine  # the packed layout belongs to one engine
        try:
            self.packed = torch.ops.quantized.linear_prepack(quantized, bias)
        finally:
            torch.backends.quantized.engine = previous

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.ops.quantized.linear_dynamic(
            inputs.float(), self.packed, reduce_range=self.reduce_range
        )

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


class TorchInt8Encoder(SentenceTransformerEncoder):
    def __init__(
        self,
        spec: ModelSpec,
        *,
        precision: str | None = None,  # taken and set aside: int8 layers have their own
        **options: object,
    ) -> None:
        engine, reduce_range = quantization_engine()
        # Their own precision (int8), whatever --precision says for torch models.
        super().__init__(spec, device="cpu", precision="fp32", **options)  # type: ignore[arg-type]
        _ = self.fingerprint  # digests the float weights, which quantisation replaces
        quantize_linear_layers(self.model, engine=engine, reduce_range=reduce_range)


def quantize_linear_layers(model: torch.nn.Module, *, engine: str, reduce_range: bool) -> int:
    """Replace every ``nn.Linear`` below ``model`` with :class:`Int8Linear`; returns the count."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, Int8Linear(child, engine=engine, reduce_range=reduce_range))
                replaced += 1
    return replaced


@cache
def quantization_engine() -> tuple[str, bool]:
    """The engine for int8 linear layers, and whether activations need 7-bit range."""
    engines = torch.backends.quantized.supported_engines
    if platform.machine().lower() not in ("x86_64", "amd64") or not (
        {"onednn", "x86", "fbgemm"} & set(engines)
    ):
        raise InputError(
            "the torch-int8 backend needs an x86 CPU with torch's onednn or fbgemm engine; "
            "use --backend onnx-int8 on this machine"
        )
    engine = "onednn" if "onednn" in engines else ("x86" if "x86" in engines else "fbgemm")
    return engine, not has_vnni()
