"""Tiny randomly initialised decoder LLMs of several families, with a byte-level BPE
tokenizer, for tests of the llm: encoder and its training."""

from __future__ import annotations

from pathlib import Path

import torch
import transformers

WORDS = "the a cat dog sat ran on mat vitamin bones fish swim rivers loyal strong".split()  # noqa: SIM905
SMALL = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2}
HEADS = {"num_attention_heads": 4, "num_key_value_heads": 2}
FAMILIES = {
    "llama": ("LlamaConfig", "LlamaForCausalLM", {**SMALL, **HEADS}),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", {**SMALL, **HEADS}),
    "mistral": ("MistralConfig", "MistralForCausalLM", {**SMALL, **HEADS, "sliding_window": 8}),
    "phi3": ("Phi3Config", "Phi3ForCausalLM", {**SMALL, **HEADS, "pad_token_id": 1}),
    "gemma": ("GemmaConfig", "GemmaForCausalLM", {**SMALL, **HEADS, "head_dim": 8}),
}


def bpe_tokenizer(folder: Path) -> int:
    """A tiny byte-level BPE tokenizer, the kind decoder LLMs use; returns its size."""
    from tokenizers import ByteLevelBPETokenizer

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(
        [" ".join(WORDS)] * 4, vocab_size=300, special_tokens=["<unk>", "<pad>", "</s>"]
    )
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer._tokenizer,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
    )
    fast.save_pretrained(str(folder))
    return len(fast)


def tiny_model(folder: Path, family: str) -> Path:
    config_name, model_name, sizes = FAMILIES[family]
    vocabulary = bpe_tokenizer(folder)
    config = getattr(transformers, config_name)(vocab_size=vocabulary, **sizes)
    torch.manual_seed(0)
    model = getattr(transformers, model_name)(config)
    model.save_pretrained(str(folder))
    return folder
