from __future__ import annotations

import pytest
import torch

from densekit.encode.devices import available_devices, resolve_device, use_device
from densekit.errors import InputError


def test_auto_is_the_first_gpu_else_the_cpu() -> None:
    here = available_devices()
    assert here[0] == "cpu"
    gpus = [device for device in here if device != "cpu"]
    assert resolve_device("auto") == (gpus[0] if gpus else "cpu")
    assert resolve_device("CPU ") == "cpu"


def test_a_device_this_machine_lacks_is_refused_with_the_ones_it_has() -> None:
    missing = f"cuda:{torch.cuda.device_count()}"  # one past the last GPU, if any
    with pytest.raises(InputError, match=f"device '{missing}' is not on this machine; it has cpu"):
        resolve_device(missing)
    with pytest.raises(InputError, match="unknown device 'tpu'; give one of auto, cpu"):
        resolve_device("tpu")


def test_the_process_default_is_what_models_loaded_without_a_device_get() -> None:
    try:
        use_device("cpu")
        assert resolve_device(None) == "cpu"
    finally:
        use_device(None)
    with pytest.raises(InputError):
        use_device("tpu")
