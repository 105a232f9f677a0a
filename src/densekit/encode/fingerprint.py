"""Content digests that identify a model's weights independently of where they were loaded from."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

# Tensors above this many bytes are hashed on a strided sample: still exact for any realistic
# change (fine-tuning touches every element), and keeps a multi-GB LLM hash under a second.
_FULL_HASH_BYTES = 64 * 1024 * 1024
_SAMPLE_ELEMENTS = 1 << 20


def files_digest(folder: Path, names: Iterable[str]) -> str:
    """A digest of the named files' bytes, in order: a model kept as a few small files."""
    digest = hashlib.sha256()
    for name in names:
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()


def weights_digest(named_tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(named_tensors, key=lambda item: item[0]):
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        if flat.numel() * flat.element_size() > _FULL_HASH_BYTES:
            flat = flat[:: max(1, flat.numel() // _SAMPLE_ELEMENTS)].contiguous()
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def settings_digest(weights: str, settings: Mapping[str, Any]) -> str:
    payload = json.dumps({"weights": weights, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:32]
