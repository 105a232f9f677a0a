"""ColBERT-style token encoders: a transformer's contextual token vectors, projected to a small
dimension (128 by default) and normalised, one per token, for late interaction (MaxSim).

As in ColBERT: a query is read with a query marker and padded to ``query_tokens`` with [MASK]
tokens (query augmentation: the masks learn to stand for terms the query implies), every one
of its vectors kept; a document is read with a document marker, and its vectors are kept except
for padding, punctuation and special tokens. Any Hugging Face encoder is a starting point (the
projection is then new, so it must be trained: :mod:`densekit.train.late_interaction`); a
folder saved by :meth:`LateInteractionEncoder.save` loads back whole.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.errors import InputError

CONFIG_FILE = "late_interaction.json"
PROJECTION_FILE = "projection.pt"


@dataclass(frozen=True)
class LateInteractionSettings:
    dimension: int = 128
    query_tokens: int = 32  # a query is padded (with [MASK]) or cut to this many tokens
    document_tokens: int = 256  # a document is cut to this many
    query_marker: str = "[Q]"
    document_marker: str = "[D]"

    def __post_init__(self) -> None:
        for name in ("dimension", "query_tokens", "document_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"late interaction {name} must be a positive whole number")


class LateInteractionEncoder:
    """Texts to lists of token vectors (tokens x dimension, float32, unit length)."""

    def __init__(
        self,
        location: str,
        settings: LateInteractionSettings | None = None,
        device: str = "cpu",
        batch: int = 32,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = Path(location)
        saved = folder / CONFIG_FILE
        if saved.exists():  # a late-interaction model saved by densekit: its own settings
            settings = LateInteractionSettings(**json.loads(saved.read_text("utf-8")))
        self.settings = settings or LateInteractionSettings()
        self.location = location
        self.device = device
        self.batch = batch
        self.tokenizer = AutoTokenizer.from_pretrained(location)
        if self.tokenizer.mask_token_id is None:
            raise InputError(f"{location}: its tokenizer has no [MASK] token to pad queries with")
        self.model = AutoModel.from_pretrained(location).to(device)
        hidden = int(self.model.config.hidden_size)
        self.projection = torch.nn.Linear(hidden, self.settings.dimension, bias=False).to(device)
        if (folder / PROJECTION_FILE).exists():
            state = torch.load(folder / PROJECTION_FILE, map_location=device, weights_only=True)
            self.projection.load_state_dict(state)
        else:  # a fixed start, so two processes that load the same base agree
            generator = torch.Generator().manual_seed(0)
            weight = torch.randn(self.settings.dimension, hidden, generator=generator)
            with torch.no_grad():
                self.projection.weight.copy_(weight / hidden**0.5)
        self._skip = self._skipped_ids()

    @property
    def name(self) -> str:
        return f"late-interaction:{Path(self.location).name}"

    @property
    def dimension(self) -> int:
        return self.settings.dimension

    @property
    def fingerprint(self) -> str:
        weights = weights_digest(
            [*self.model.named_parameters(), *self.projection.named_parameters()]
        )
        return settings_digest(weights, asdict(self.settings))

    def _skipped_ids(self) -> set[int]:
        """Token ids whose vectors a document does not keep: punctuation and specials."""
        ids = set(self.tokenizer.all_special_ids)
        for symbol in string.punctuation:
            ids.update(self.tokenizer.encode(symbol, add_special_tokens=False))
        return ids

    def _marker(self, query: bool) -> list[int]:
        """The ids that mark a query or a document, inserted after the first token: BERT's
        [unused0] / [unused1] where the vocabulary has them (ColBERT's), else the marker text."""
        token = "[unused0]" if query else "[unused1]"
        found = self.tokenizer.convert_tokens_to_ids(token)
        if isinstance(found, int) and found != self.tokenizer.unk_token_id:
            return [found]
        text = self.settings.query_marker if query else self.settings.document_marker
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def token_vectors(self, texts: Sequence[str], *, query: bool) -> tuple[Any, Any]:
        """(vectors (texts x tokens x dimension), kept (texts x tokens) bool), as torch
        tensors with gradients: what training differentiates through."""
        import torch

        settings = self.settings
        marker = self._marker(query)
        limit = (settings.query_tokens if query else settings.document_tokens) - len(marker)
        encoded = self.tokenizer(
            list(texts),
            padding="max_length" if query else "longest",
            truncation=True,
            max_length=limit,
            return_tensors="pt",
        )
        ids, attention = encoded["input_ids"], encoded["attention_mask"]
        # The marker goes after the first ([CLS]) token.
        marks = torch.tensor(marker, dtype=ids.dtype).expand(len(ids), -1)
        ids = torch.cat([ids[:, :1], marks, ids[:, 1:]], dim=1).to(self.device)
        attention = torch.cat(
            [attention[:, :1], torch.ones_like(marks), attention[:, 1:]], dim=1
        ).to(self.device)
        if query:  # query augmentation: padding becomes [MASK], read like any token
            ids = torch.where(attention.bool(), ids, self.tokenizer.mask_token_id)
            attention = torch.ones_like(attention)
        hidden = self.model(input_ids=ids, attention_mask=attention).last_hidden_state
        vectors = torch.nn.functional.normalize(self.projection(hidden), dim=-1)
        if query:
            kept = torch.ones_like(ids, dtype=torch.bool)
        else:
            skip = torch.tensor(sorted(self._skip), device=ids.device)
            kept = attention.bool() & ~torch.isin(ids, skip)
            kept[:, 1 : 1 + len(marker)] = True  # the marker, even written with brackets
        return vectors, kept

    def _encode(self, texts: Sequence[str], query: bool) -> list[np.ndarray]:
        import torch

        found: list[np.ndarray] = []
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch):
                vectors, kept = self.token_vectors(texts[start : start + self.batch], query=query)
                vectors = vectors.float().cpu().numpy()
                for row, mask in zip(vectors, kept.cpu().numpy(), strict=True):
                    found.append(np.ascontiguousarray(row[mask], dtype=np.float32))
        return found

    def encode_queries(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._encode(texts, query=True)

    def encode_documents(self, texts: Sequence[str]) -> list[np.ndarray]:
        """Each document's kept token vectors (an empty text keeps its marker's)."""
        return self._encode(texts, query=False)

    def save(self, folder: str | Path) -> None:
        import torch

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder)
        self.tokenizer.save_pretrained(folder)
        torch.save(self.projection.state_dict(), folder / PROJECTION_FILE)
        (folder / CONFIG_FILE).write_text(json.dumps(asdict(self.settings), indent=2), "utf-8")
