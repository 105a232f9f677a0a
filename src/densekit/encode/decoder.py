"""Decoder LLMs as embedding models: causal attention removed, pooled hidden states.

A model string ``llm:NAME[#options]`` loads any causal LM transformers knows (Llama, Qwen2,
Mistral, Phi, Gemma, ...; ``smollm2`` is the bundled SmolLM2-135M-Instruct) as an encoder:

    llm:smollm2#attention=bidirectional&pooling=mean&dtype=float32&max_tokens=512

- ``attention``: ``bidirectional`` (default; every token sees every other, as LLM2Vec and
  ULLME do) or ``causal`` (as the model was trained). Bidirectional attention is a full 4-D
  mask built from the padding mask: current transformers ignore ``is_causal=False`` set on
  attention modules, but pass a custom 4-D mask through unchanged. Loading checks that the
  first token's state changes under it, so a family whose attention ignores custom masks is
  refused by name instead of silently staying causal.
- ``pooling``: ``mean`` over the real tokens, ``last`` (the final real token's state, the
  natural summary of a causal model), or ``weighted-mean`` (position-weighted, later tokens
  count more: SGPT).
- ``dtype``: ``float32`` or ``bfloat16``; ``max_tokens`` caps the context read.

Queries get an instruction prompt (the spec's ``query_prompt``, by default a generic retrieval
instruction), documents none. The options are kept in the spec's location, so a collection
reopens the model exactly as it was built.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import numpy as np

from densekit.encode.batching import DEFAULT_BATCH_TOKENS, token_budget_batches
from densekit.encode.devices import resolve_device
from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.encode.model_spec import ModelSpec
from densekit.encode.truncation import tokenizer_spans
from densekit.errors import InputError, MissingDependencyError

LLM_PREFIX = "llm:"
Attention = Literal["bidirectional", "causal"]
Pooling = Literal["mean", "last", "weighted-mean"]
ATTENTIONS: tuple[Attention, ...] = ("bidirectional", "causal")
POOLINGS: tuple[Pooling, ...] = ("mean", "last", "weighted-mean")
DTYPES = ("float32", "bfloat16")
PROJECTION_FILE = "projection.safetensors"  # a trained head (densekit train-llm --projection)
DEFAULT_QUERY_PROMPT = "Instruct: Given a search query, retrieve relevant passages\nQuery: "


@dataclass(frozen=True)
class DecoderOptions:
    attention: Attention = "bidirectional"
    pooling: Pooling = "mean"
    dtype: str = "float32"
    max_tokens: int = 512

    def __post_init__(self) -> None:
        if self.attention not in ATTENTIONS:
            raise InputError(f"attention must be one of {', '.join(ATTENTIONS)}")
        if self.pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {', '.join(POOLINGS)}")
        if self.dtype not in DTYPES:
            raise InputError(f"dtype must be one of {', '.join(DTYPES)}")
        if isinstance(self.max_tokens, bool) or self.max_tokens < 8:
            raise InputError("max_tokens must be a whole number of at least 8")

    def fragment(self) -> str:
        return "&".join(f"{k}={v}" for k, v in asdict(self).items())

    @classmethod
    def parse(cls, fragment: str, where: str) -> DecoderOptions:
        values: dict[str, Any] = {}
        for key, value in parse_qsl(fragment, keep_blank_values=True):
            if key not in cls.__dataclass_fields__:
                known = ", ".join(cls.__dataclass_fields__)
                raise InputError(f"{where}: unknown option {key!r}; options are {known}")
            if key == "max_tokens":
                try:
                    values[key] = int(value)
                except ValueError:
                    raise InputError(f"{where}: max_tokens must be a whole number") from None
            else:
                values[key] = value
        return cls(**values)


def decoder_spec(name: str, query_prompt: str | None = None) -> ModelSpec:
    """``llm:NAME[#options]`` as a spec whose location keeps every option spelled out."""
    model, _, fragment = name.removeprefix(LLM_PREFIX).partition("#")
    if not model.strip():
        raise InputError(f"{name!r}: no model; write llm:NAME, e.g. llm:smollm2")
    options = DecoderOptions.parse(fragment, name)
    return ModelSpec(
        name=f"{LLM_PREFIX}{model}",
        location=f"{model}#{options.fragment()}",
        query_prompt=DEFAULT_QUERY_PROMPT if query_prompt is None else query_prompt,
        backend="decoder",
    )


class DecoderEncoder:
    """Sentence vectors from a decoder LLM's last hidden states (see the module notes)."""

    def __init__(
        self,
        spec: ModelSpec,
        *,
        batch_tokens: int = DEFAULT_BATCH_TOKENS,
        max_batch: int = 32,
        max_tokens: int | None = None,
        device: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        from densekit.encode.causal import causal_lm_location, load_pretrained

        model, _, fragment = spec.location.partition("#")
        self.spec = spec
        self.options = DecoderOptions.parse(fragment, spec.name)
        self.batch_tokens = batch_tokens
        self.max_batch = max_batch
        logging.getLogger("transformers").setLevel(logging.ERROR)
        location = causal_lm_location(model)
        lora = (Path(location) / "adapter_config.json").is_file()
        try:
            config = AutoConfig.from_pretrained(_lora_base(location) if lora else location)
        except (OSError, ValueError) as exc:
            raise InputError(f"could not load {model!r} ({_first_line(exc)})") from None
        if not any(a.endswith("ForCausalLM") for a in config.architectures or []):
            kind = ", ".join(config.architectures or [config.model_type])
            raise InputError(
                f"{model!r} is a {kind}, not a causal LM; the llm: backend turns decoder LLMs "
                "into encoders (use the model's name without llm: for encoder models)"
            )
        dtype = getattr(torch, self.options.dtype)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(location)
            if lora:
                self.model = _merged_lora(location, dtype)
            else:
                self.model = load_pretrained(
                    AutoModel, location, dtype=dtype, attn_implementation="sdpa"
                )
        except (OSError, ValueError) as exc:
            raise InputError(f"could not load {model!r} ({_first_line(exc)})") from None
        self.device = resolve_device(device)
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        limit = getattr(config, "max_position_embeddings", None) or self.options.max_tokens
        # A reopened collection passes the length it was built with; it must match.
        self._max_tokens = min(max_tokens or self.options.max_tokens, int(limit))
        for side, prompt in (("query", spec.query_prompt), ("document", spec.document_prompt)):
            if prompt and self._prompt_tokens(prompt) >= self._max_tokens - 1:
                raise InputError(
                    f"the {side} prompt takes {self._prompt_tokens(prompt)} tokens, and "
                    f"{spec.name} reads {self._max_tokens}; shorten it or raise max_tokens"
                )
        if self.options.attention == "bidirectional":
            check_bidirectional(self.model, config.model_type)
        self.projection = _projection(Path(location) / PROJECTION_FILE, config.hidden_size)

    # --- the Encoder protocol ---------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    @cached_property
    def dimension(self) -> int:
        if self.projection is not None:
            return int(self.projection.shape[0])
        return int(self.model.config.hidden_size)

    @cached_property
    def fingerprint(self) -> str:
        settings = {**asdict(self.options), "max_tokens": self._max_tokens}
        settings |= {"query_prompt": self.spec.query_prompt, "doc": self.spec.document_prompt}
        tensors = list(self.model.state_dict().items())
        if self.projection is not None:
            tensors.append(("projection.weight", self.projection))
        return settings_digest(weights_digest(tensors), settings)

    @property
    def max_tokens(self) -> int:
        return self._max_tokens

    @cached_property
    def document_tokens(self) -> int:
        return self._max_tokens - self._prompt_tokens(self.spec.document_prompt) - 1

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        encoded = self.tokenizer(list(texts), add_special_tokens=True, verbose=False)
        return [len(ids) for ids in encoded["input_ids"]]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return tokenizer_spans(self.tokenizer, text)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.encode_pooled(texts, self.spec.query_prompt)[self.options.pooling]

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self.encode_pooled(texts, self.spec.document_prompt)[self.options.pooling]

    # --- encoding ---------------------------------------------------------------------------

    def encode_pooled(self, texts: Sequence[str], prompt: str = "") -> dict[str, np.ndarray]:
        """Unit vectors of ``texts`` under every pooling at once, from one forward pass each
        batch (so comparisons of poolings cost one encoding)."""
        prompted = [prompt + text for text in texts]
        lengths = [min(n, self._max_tokens) for n in self.token_lengths(prompted)]
        pooled = {p: np.empty((len(texts), self.dimension), np.float32) for p in POOLINGS}
        for rows in token_budget_batches(
            lengths, self._max_tokens, self.batch_tokens, self.max_batch
        ):
            states, mask = self.hidden_states([prompted[i] for i in rows])
            for pooling, vectors in pool_all(states, mask, self.projection).items():
                pooled[pooling][rows] = vectors
        for vectors in pooled.values():
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return pooled

    def hidden_states(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """Last hidden states (batch, tokens, hidden) and the padding mask of ``texts``."""
        import torch

        features = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_tokens,
            return_tensors="pt",
        )
        mask = features["attention_mask"]
        with torch.inference_mode():
            output = self.model(
                input_ids=features["input_ids"].to(self.device),
                attention_mask=self.attention_mask(mask).to(self.device),
            )
        return output.last_hidden_state.float().cpu(), mask

    def attention_mask(self, padding: Any) -> Any:
        """The 2-D padding mask (causal) or the full 4-D mask built from it (bidirectional)."""
        if self.options.attention == "causal":
            return padding
        return full_attention_mask(padding, self.model.dtype)

    def _prompt_tokens(self, prompt: str) -> int:
        if not prompt:
            return 0
        return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])


def full_attention_mask(padding: Any, dtype: Any) -> Any:
    """(batch, 1, tokens, tokens) additive mask: every real token attends to every real token.

    Padded keys get the dtype's minimum (not -inf, so padded query rows stay finite)."""
    import torch

    keys = padding[:, None, None, :].bool()
    rows = padding.shape[1]
    allowed = keys.expand(-1, 1, rows, -1)
    mask = torch.zeros(allowed.shape, dtype=dtype)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)


def pool(states: Any, mask: Any, pooling: str) -> Any:
    """One pooling of ``states`` (batch, tokens, hidden) over the real tokens of ``mask``."""
    import torch

    weights = mask.to(states.dtype)
    if pooling == "mean":
        counts = weights.sum(dim=1, keepdim=True).clamp(min=1)
        return (states * weights[..., None]).sum(dim=1) / counts
    if pooling == "last":
        return states[torch.arange(states.shape[0]), (mask.sum(dim=1) - 1).clamp(min=0)]
    positions = torch.cumsum(weights, dim=1) * weights  # 1..n on real tokens, 0 on padding
    return (states * positions[..., None]).sum(dim=1) / positions.sum(dim=1, keepdim=True)


def pool_all(states: Any, mask: Any, projection: Any = None) -> dict[str, np.ndarray]:
    """Mean, last-token and position-weighted mean of ``states`` over the real tokens (then
    through the ``projection`` matrix, if any)."""
    pooled = {p: pool(states, mask, p) for p in POOLINGS}
    if projection is not None:
        pooled = {p: vectors @ projection.T for p, vectors in pooled.items()}
    return {p: vectors.numpy().astype(np.float32) for p, vectors in pooled.items()}


def check_bidirectional(model: Any, model_type: str) -> None:
    """Refuse a model whose attention ignores a custom mask: with full attention the first
    token must see the second, so its state must change."""
    import torch

    ids = torch.tensor([[11, 12, 13]])
    padding = torch.ones_like(ids)
    with torch.inference_mode():
        causal = model(input_ids=ids, attention_mask=padding).last_hidden_state[0, 0]
        full = model(
            input_ids=ids, attention_mask=full_attention_mask(padding, model.dtype)
        ).last_hidden_state[0, 0]
    if torch.allclose(causal.float(), full.float(), atol=1e-6):
        raise InputError(
            f"model type {model_type!r} ignores a custom attention mask, so it cannot attend "
            "bidirectionally here; use #attention=causal"
        )


def _projection(path: Path, hidden: int) -> Any:
    """The trained head's (dims, hidden) matrix, or None when the model has none."""
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    weight = load_file(str(path)).get("weight")
    if weight is None or weight.ndim != 2 or weight.shape[1] != hidden:
        raise InputError(f"{path}: not a projection from the model's {hidden} dimensions")
    return weight.float()


def _lora_base(location: str) -> str:
    import json

    card = json.loads((Path(location) / "adapter_config.json").read_text(encoding="utf-8"))
    return str(card.get("base_model_name_or_path") or location)


def _merged_lora(location: str, dtype: Any) -> Any:
    """The decoder of a base causal LM with saved LoRA weights merged in (densekit train-llm
    --adapter-only writes such a folder; its config names the base)."""
    try:
        from peft import AutoPeftModelForCausalLM
    except ImportError:
        raise MissingDependencyError("peft", "llm") from None
    model = AutoPeftModelForCausalLM.from_pretrained(location, dtype=dtype)
    return model.merge_and_unload().get_decoder()


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
