"""Multi-view passage reranking (MVP; Na, Kwon, Choi and Lee, "Multi-view-guided Passage
Reranking with Large Language Models", EMNLP 2025): a listwise reranker that reads every
candidate on its own and scores them all in one decoding step.

- Multi-view encoding. Each candidate is read, Fusion-in-Decoder style, as
  ``<v1>…<vm> Query: q | Context: c``: m view tokens (added to the vocabulary and learned) at
  the same positions for every passage, so no passage sees another one or its place in the
  list. The backbone's states at the view tokens are the passage's m relevance vectors.
- Anchor-guided decoding. A small transformer decoder starts from m learned view queries; view
  k's query attends over every candidate's k-th relevance vector (with no position among them)
  and gives one anchor vector. A passage's score for view k is its relevance vector's dot
  product with that anchor, and its score is the mean over views: one encoder pass per passage
  and one decoder pass per query, no generation, no sliding window.

Scores depend on the set of candidates, never on their order. :meth:`MultiViewModel.score_list`
also reads the candidates in a canonical order (by text), so batches and attention sums are
the same bits whichever order the candidates come in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from densekit.encode.decoder import full_attention_mask
from densekit.encode.truncation import tokenizer_prefix
from densekit.errors import InputError

VIEW_TOKEN = "<mvp_view_{}>"
# How the backbone is built and called: an encoder (BERT family), a T5 encoder, or a decoder
# LLM read with bidirectional attention (densekit's llm: encoders).
BACKBONE_KINDS = ("encoder", "t5-encoder", "decoder-llm")


@dataclass(frozen=True)
class MultiViewShape:
    """What fixes a model's parameters and the way it reads text."""

    views: int
    width: int
    heads: int
    decoder_layers: int
    max_length: int
    backbone: str  # one of BACKBONE_KINDS

    def __post_init__(self) -> None:
        if self.views < 1 or self.decoder_layers < 1 or self.max_length < 8:
            raise InputError(
                f"views and decoder_layers must be at least 1 and max_length at least 8, got "
                f"{self.views}, {self.decoder_layers} and {self.max_length}"
            )
        if self.backbone not in BACKBONE_KINDS:
            raise InputError(f"backbone kind {self.backbone!r} is not one of {BACKBONE_KINDS}")


def attention_heads(width: int) -> int:
    """Heads of 64 dimensions where the width allows, else the most heads that divide it."""
    if width % 64 == 0:
        return width // 64
    return next(h for h in range(min(16, width), 0, -1) if width % h == 0)


class AnchorDecoder(nn.Module):
    """m learned view queries, each attending over its own view of every candidate."""

    def __init__(self, shape: MultiViewShape) -> None:
        super().__init__()
        width = shape.width
        self.views = shape.views
        self.queries = nn.Parameter(torch.randn(shape.views, width) / math.sqrt(width))
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(
                width, shape.heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True
            )
            for _ in range(shape.decoder_layers)
        )
        self.norm = nn.LayerNorm(width)

    def forward(self, relevance: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Anchors (lists, views, width) of ``relevance`` (lists, candidates, views, width);
        ``present`` (lists, candidates) marks real candidates (lists are padded)."""
        lists, candidates, views, width = relevance.shape
        memory = relevance.reshape(lists, candidates * views, width)
        view_of_key = torch.arange(candidates * views, device=memory.device) % views
        other_view = view_of_key[None, :] != torch.arange(views, device=memory.device)[:, None]
        padding = ~present.repeat_interleave(views, dim=1)
        anchors = self.queries.expand(lists, views, width)
        for layer in self.layers:
            anchors = layer(
                anchors, memory, memory_mask=other_view, memory_key_padding_mask=padding
            )
        return self.norm(anchors)


class MultiViewModel(nn.Module):
    """A backbone that reads (view tokens, query, passage) and an :class:`AnchorDecoder`."""

    def __init__(
        self, backbone: Any, tokenizer: Any, shape: MultiViewShape, decoder: AnchorDecoder
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.shape = shape
        self.decoder = decoder
        ids = tokenizer.convert_tokens_to_ids(view_tokens(shape.views))
        if any(i is None or i == tokenizer.unk_token_id for i in ids):
            raise InputError(
                f"the tokenizer lacks the model's {shape.views} view tokens; the folder does "
                "not hold a complete MVP model"
            )
        self.register_buffer("view_ids", torch.tensor(ids), persistent=False)

    # --- reading ---------------------------------------------------------------------------

    def relevance(self, query: str, passages: Sequence[str]) -> torch.Tensor:
        """The m relevance vectors (passages, views, width) of each passage for ``query``,
        under the caller's gradient mode."""
        prefix = "".join(view_tokens(self.shape.views))
        firsts = [f"{prefix} Query: {query}"] * len(passages)
        cut = self.shape.max_length
        # Cut before tokenising: a huge stored document would be tokenised whole per query.
        seconds = [f"Context: {tokenizer_prefix(self.tokenizer, p, cut)}" for p in passages]
        features = self.tokenizer(
            firsts,
            seconds,
            padding=True,
            truncation="longest_first",
            max_length=self.shape.max_length,
            return_tensors="pt",
        ).to(self.view_ids.device)
        states = self._states(features)
        found = features["input_ids"][:, :, None] == self.view_ids[None, None, :]
        if not bool(found.any(dim=1).all()):  # a tokenizer that split or dropped them
            raise InputError("the tokenizer did not keep the view tokens whole; not an MVP model")
        positions = found.to(torch.int64).argmax(dim=1)  # (passages, views)
        return torch.gather(
            states, 1, positions[:, :, None].expand(-1, -1, states.shape[-1])
        ).float()

    def _states(self, features: Any) -> torch.Tensor:
        mask = features["attention_mask"]
        if self.shape.backbone == "decoder-llm":
            dtype = next(self.backbone.parameters()).dtype
            out = self.backbone(
                input_ids=features["input_ids"],
                attention_mask=full_attention_mask(mask, dtype).to(mask.device),
            )
        elif self.shape.backbone == "t5-encoder":
            out = self.backbone(input_ids=features["input_ids"], attention_mask=mask)
        else:
            out = self.backbone(**features)
        return out.last_hidden_state

    # --- scoring ---------------------------------------------------------------------------

    def view_scores(self, relevance: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Each candidate's score per view (lists, candidates, views)."""
        anchors = self.decoder(relevance, present)
        scale = 1.0 / math.sqrt(self.shape.width)
        return torch.einsum("lcvw,lvw->lcv", relevance, anchors) * scale

    def scores(self, relevance: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """Each candidate's score (lists, candidates): the mean of its view scores."""
        return self.view_scores(relevance, present).mean(dim=-1)

    def score_list(self, query: str, passages: Sequence[str], batch: int = 32) -> np.ndarray:
        """Scores of ``passages`` for ``query``, read ``batch`` passages at a time (any number
        of candidates fits: only their relevance vectors are kept)."""
        if not passages:
            return np.empty(0, dtype=np.float32)
        # A canonical order: the same set of candidates gives the same bits in any order.
        order = sorted(range(len(passages)), key=lambda i: passages[i])
        with torch.inference_mode():
            parts = [
                self.relevance(query, [passages[i] for i in order[start : start + batch]])
                for start in range(0, len(order), batch)
            ]
            relevance = torch.cat(parts)[None]
            present = torch.ones(relevance.shape[:2], dtype=torch.bool, device=relevance.device)
            ranked = self.scores(relevance, present)[0].cpu().numpy()
        scores = np.empty(len(passages), dtype=np.float32)
        scores[order] = ranked
        return scores


def view_tokens(views: int) -> list[str]:
    return [VIEW_TOKEN.format(k) for k in range(1, views + 1)]


def orthogonality_loss(relevance: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine between different views of the same passage: 0 when each
    passage's m relevance vectors are orthogonal (keeps the views from collapsing into one)."""
    views = relevance.shape[-2]
    if views < 2:
        return relevance.new_zeros(())
    unit = nn.functional.normalize(relevance, dim=-1)
    gram = unit @ unit.transpose(-1, -2)
    off_diagonal = gram - torch.eye(views, device=gram.device)
    return off_diagonal.pow(2).sum(dim=(-1, -2)).mean() / (views * (views - 1))
