"""LoRA fine-tuning of decoder LLMs as encoders, with generation-augmented learning (GRL).

The representation side is the `llm:` encoder (densekit.encode.decoder): the LLM's hidden
states under bidirectional (or causal) attention, pooled and normalised. Training adds LoRA
weights (peft) and minimises InfoNCE over in-batch and hard negatives. GRL (ULLME) also aligns
the two ways the same LLM judges relevance: for each query's candidates (its positive and hard
negatives), representation scores s_rep = cos / τ and generation scores s_gen = mean token
log-probability of the query given the passage, with the model in causal mode,

    L = InfoNCE + λ · KL(softmax(s_gen / τ_gen) ‖ softmax(s_rep)),   s_gen detached
    (losses.info_nce, losses.grl).

τ_gen (default 1) sets how sharp the generation target is: mean log-probabilities of a query
after its positive and after a mined negative differ by under a nat, a softer target than
InfoNCE's cos / τ, so at τ_gen 1 the KL term also pulls the positive's margin down.

Optionally (``dpo_weight``) a DPO-style generative term trains the causal side too: the query
should be likelier after its positive than after each hard negative, relative to the base
model (the same LLM with the LoRA weights switched off),

    L_DPO = −log σ(β · [(ℓ(q|p⁺) − ℓ_ref(q|p⁺)) − (ℓ(q|p⁻) − ℓ_ref(q|p⁻))]),

ℓ the summed token log-probability (losses.dpo). One set of LoRA weights serves both modes, and the
generation scores come from the same implementation the LLM reranker uses (CausalLM).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from densekit.encode.causal import CausalLM, causal_lm_location, load_pretrained
from densekit.encode.decoder import (
    PROJECTION_FILE,
    DecoderOptions,
    decoder_spec,
    full_attention_mask,
    pool,
)
from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.train.losses.dpo import dpo_loss
from densekit.train.losses.grl import grl_loss
from densekit.train.losses.info_nce import info_nce
from densekit.train.pairs import Example

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@dataclass(frozen=True)
class LoraSettings:
    rank: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = DEFAULT_TARGETS


@dataclass(frozen=True)
class LlmTraining:
    """How the LLM encoder learns; ``grl_weight`` and ``dpo_weight`` 0 is contrastive only."""

    epochs: int = 1
    batch: int = 4
    learning_rate: float = 2e-4
    temperature: float = 0.05
    grl_weight: float = 0.0
    grl_temperature: float = 1.0  # τ_gen: the generation scores are divided by it
    dpo_weight: float = 0.0
    dpo_beta: float = 0.1
    max_steps: int | None = None
    passage_tokens: int = 128  # of each candidate, in the generation prompt
    projection: int | None = None  # a trained linear head to this many dimensions
    seed: int = 0
    lora: LoraSettings = field(default_factory=LoraSettings)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch < 1 or (self.max_steps is not None and self.max_steps < 1):
            raise InputError("epochs, batch and max_steps must be positive")
        if self.projection is not None and self.projection < 1:
            raise InputError("the projection needs a positive number of dimensions")
        positive = (self.learning_rate, self.temperature, self.grl_temperature, self.dpo_beta)
        if not all(value > 0 for value in positive):
            raise InputError(
                "learning rate, temperature, grl_temperature and dpo_beta must be positive"
            )
        if self.grl_weight < 0 or self.dpo_weight < 0:
            raise InputError("grl_weight and dpo_weight must be >= 0")


# A score no softmax gives weight to: the place of a candidate a row lacks.
MISSING = -1e4


def query_passage_pairs(
    queries: Sequence[str], candidates: Sequence[Sequence[str]]
) -> list[tuple[str, str]]:
    """Each query with each of its candidates, row by row (the order ``padded`` splits)."""
    return [(q, passage) for q, row in zip(queries, candidates, strict=True) for passage in row]


def padded(flat: Tensor, lengths: Sequence[int], fill: float | bool) -> Tensor:
    """Rows of ``lengths`` values from ``flat``, padded with ``fill`` to the longest."""
    width = max(lengths)
    rows = torch.split(flat, list(lengths))
    return torch.stack([F.pad(row, (0, width - len(row)), value=fill) for row in rows])


class LlmEncoderTrainer:
    """A causal LM with LoRA weights, trained as an `llm:` encoder."""

    def __init__(self, base: str, training: LlmTraining | None = None) -> None:
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.training = training or LlmTraining()
        self.spec = decoder_spec(base if base.startswith("llm:") else f"llm:{base}")
        model_name, _, fragment = self.spec.location.partition("#")
        self.options = DecoderOptions.parse(fragment, self.spec.name)
        location = causal_lm_location(model_name)
        torch.manual_seed(self.training.seed)
        try:
            causal = load_pretrained(
                AutoModelForCausalLM, location, dtype=torch.float32, attn_implementation="sdpa"
            )
            self.tokenizer = AutoTokenizer.from_pretrained(location)
        except (OSError, ValueError) as exc:
            raise InputError(f"could not load causal LM {model_name!r} ({exc})") from None
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        lora = self.training.lora
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in causal.named_modules() if _linear(m)})
        missing = [t for t in lora.targets if t not in linear]
        if missing:
            raise InputError(
                f"LoRA targets {', '.join(missing)} match no module of {model_name!r}; its "
                f"linear layers are named {', '.join(linear)}"
            )
        config = LoraConfig(
            r=lora.rank,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.targets),
        )
        self.model = get_peft_model(causal, config)
        self.scorer = CausalLM(self.spec.name, self.model, self.tokenizer)
        self.head: torch.nn.Linear | None = None
        if self.training.projection is not None:
            hidden = int(causal.config.hidden_size)
            self.head = torch.nn.Linear(hidden, self.training.projection, bias=False)
            # Starts as the first dimensions of the pooled state (a truncation), not noise.
            with torch.no_grad():
                self.head.weight.copy_(torch.eye(self.training.projection, hidden))

    @property
    def decoder(self) -> Any:
        return self.model.get_decoder()

    def embed(self, texts: Sequence[str], prompt: str = "") -> Tensor:
        """Pooled, normalised vectors of ``texts``, with gradients."""
        features = self.tokenizer(
            [prompt + text for text in texts],
            padding=True,
            truncation=True,
            max_length=self.options.max_tokens,
            return_tensors="pt",
        )
        mask = features["attention_mask"]
        attention = (
            mask if self.options.attention == "causal" else full_attention_mask(mask, torch.float32)
        )
        states = self.decoder(input_ids=features["input_ids"], attention_mask=attention)
        pooled = pool(states.last_hidden_state, mask, self.options.pooling)
        if self.head is not None:
            pooled = self.head(pooled)
        return F.normalize(pooled, dim=-1)

    @contextmanager
    def _without_dropout(self) -> Iterator[None]:
        """Causal scoring in evaluation mode, then back to training mode."""
        self.model.eval()
        try:
            yield
        finally:
            self.model.train()

    def generation_scores(
        self, queries: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> Tensor:
        """s_gen: mean log p(query | candidate) under the model in causal mode (no gradient)."""
        pairs = query_passage_pairs(queries, candidates)
        with self._without_dropout():
            scores = self.scorer.query_log_likelihood(
                pairs, passage_tokens=self.training.passage_tokens
            )
        return padded(torch.from_numpy(scores), [len(row) for row in candidates], MISSING)

    def generation_preference(
        self, queries: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> Tensor:
        """The DPO term: each query's positive (first candidate) over its negatives."""
        pairs = query_passage_pairs(queries, candidates)
        passage_tokens = self.training.passage_tokens
        # No LoRA dropout on the policy: its implicit reward is compared with the reference's.
        with self._without_dropout():
            policy, _ = self.scorer.query_log_probs(pairs, passage_tokens=passage_tokens)
            with torch.no_grad(), self.model.disable_adapter():
                reference, _ = self.scorer.query_log_probs(pairs, passage_tokens=passage_tokens)
        lengths = [len(row) for row in candidates]
        present = padded(torch.ones(len(pairs), dtype=torch.bool), lengths, False)
        return dpo_loss(
            padded(policy, lengths, 0.0),
            padded(reference, lengths, 0.0),
            self.training.dpo_beta,
            present,
        )

    def loss(self, rows: Sequence[Example]) -> tuple[Tensor, dict[str, float]]:
        settings = self.training
        queries = self.embed([r.query for r in rows], self.spec.query_prompt)
        negatives = [n for r in rows for n in r.negatives]
        documents = self.embed([r.positive for r in rows] + negatives, self.spec.document_prompt)
        contrastive = info_nce(queries, documents, temperature=settings.temperature)
        parts = {"contrastive": contrastive.item()}
        if not (settings.grl_weight or settings.dpo_weight):
            return contrastive, parts
        if not negatives:
            raise InputError(
                "GRL and DPO rank each query's positive among its hard negatives, and these "
                "rows have none: mine them (--collection DIR --negatives N) or set the weights to 0"
            )
        # Each query's own candidates: its positive, then its hard negatives (rows may have
        # fewer mined negatives than others; the missing ones are masked).
        texts = [r.query for r in rows]
        candidates = [[r.positive, *r.negatives] for r in rows]
        total = contrastive
        if settings.grl_weight:
            scores, start = [], len(rows)
            for i, row in enumerate(rows):
                hard = documents[start : start + len(row.negatives)]
                start += len(row.negatives)
                scores.append(torch.cat([documents[i : i + 1], hard]) @ queries[i])
            representation = padded(
                torch.cat(scores) / settings.temperature, [len(c) for c in candidates], MISSING
            )
            generation = self.generation_scores(texts, candidates)
            alignment = grl_loss(representation, generation, settings.grl_temperature)
            parts["grl"] = alignment.item()
            total = total + settings.grl_weight * alignment
        if settings.dpo_weight:
            preference = self.generation_preference(texts, candidates)
            parts["dpo"] = preference.item()
            total = total + settings.dpo_weight * preference
        return total, parts

    def train(self, rows: Sequence[Example]) -> dict[str, Any]:
        if not rows:
            raise InputError("no training rows")
        settings = self.training
        optimizer = torch.optim.AdamW(
            [p for p in self.model.parameters() if p.requires_grad]
            + (list(self.head.parameters()) if self.head is not None else []),
            lr=settings.learning_rate,
        )
        generator = np.random.default_rng(settings.seed)
        self.model.train()
        started, steps, history = time.perf_counter(), 0, []
        for _ in range(settings.epochs):
            order = generator.permutation(len(rows))
            for begin in range(0, len(order), settings.batch):
                batch = [rows[i] for i in order[begin : begin + settings.batch]]
                loss, parts = self.loss(batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                history.append({"loss": loss.item(), **parts})
                steps += 1
                if settings.max_steps is not None and steps >= settings.max_steps:
                    break
            if settings.max_steps is not None and steps >= settings.max_steps:
                break
        self.model.eval()
        return {
            "steps": steps,
            "rows": len(rows),
            "seconds": round(time.perf_counter() - started, 1),
            "loss_first": round(history[0]["loss"], 4),
            "loss_last": round(float(np.mean([h["loss"] for h in history[-5:]])), 4),
            "training": {**asdict(settings), "lora": asdict(settings.lora)},
        }

    def save(self, out: str | Path, *, merged: bool = True, overwrite: bool = False) -> str:
        """Write the LoRA weights (``merged`` False) or a full causal LM with them merged in;
        returns the model string that encodes with it (`llm:OUT#options`)."""
        out = Path(out)
        refuse_to_replace(out, overwrite)

        def write(folder: Path) -> None:
            if merged:
                full = self.model.merge_and_unload()
                full.save_pretrained(str(folder))
                self.model = full  # merging consumed the LoRA wrapper
            else:
                self.model.save_pretrained(str(folder))
            self.tokenizer.save_pretrained(str(folder))
            if self.head is not None:
                from safetensors.torch import save_file

                save_file({"weight": self.head.weight.detach()}, str(folder / PROJECTION_FILE))

        publish_folder(out, write)
        return f"llm:{out}#{self.options.fragment()}"


def _linear(module: Any) -> bool:
    return isinstance(module, torch.nn.Linear)
