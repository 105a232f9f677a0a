"""Arguments for Hugging Face trainers that differ between the supported transformers."""

from __future__ import annotations


def warmup_arguments(share: float) -> dict[str, float]:
    """transformers 5 takes the warm-up share as a float ``warmup_steps``; 4 as ``warmup_ratio``."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"warmup_steps": share} if major >= 5 else {"warmup_ratio": share}
