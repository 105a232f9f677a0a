"""ColBERT-style token encoders: a transformer's contextual token vectors, projected to a small
dimension (128 by default) and normalised, one per token, for late interaction (MaxSim).

As in ColBERT: a query is read with a query marker and padded to ``query_tokens`` with [MASK]
tokens (query augmentation: the masks learn to stand for terms the query implies), every one
of its vectors kept; a document is read with a document marker, and its vectors are kept except
for padding, punctuation and special tokens. Any Hugging Face encoder is a starting point (the
projection is then new, so it must be trained: :mod:`densekit.train.late_interaction`); a
folder saved by :meth:`LateInteractionEncoder.save` loads back whole, and so do ColBERT
checkpoints made elsewhere: Stanford ColBERT's (``linear.weight`` beside the encoder's weights)
and PyLate's (a sentence-transformers folder whose Dense module is the projection), local or
from a model hub.
"""

from __future__ import annotations

import json
import string
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from densekit.encode.devices import resolve_device
from densekit.encode.fingerprint import settings_digest, weights_digest
from densekit.errors import InputError

CONFIG_FILE = "late_interaction.json"
# Settings added after the first fingerprints were made, with their defaults.
_LATER_SETTINGS = {"attend_to_masks": True, "keep_special_tokens": False}
PROJECTION_FILE = "projection.pt"


@dataclass(frozen=True)
class LateInteractionSettings:
    dimension: int = 128
    query_tokens: int = 32  # a query is padded (with [MASK]) or cut to this many tokens
    document_tokens: int = 256  # a document is cut to this many
    query_marker: str = "[Q]"
    document_marker: str = "[D]"
    # How a query's [MASK] padding is read and which document tokens are kept: densekit trains
    # with the masks attended to and special tokens dropped; Stanford ColBERT and PyLate
    # checkpoints were trained with the masks unattended and [CLS]/[SEP] kept.
    attend_to_masks: bool = True
    keep_special_tokens: bool = False

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
        device: str | None = None,
        batch: int = 32,
        name: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per load clutters search output
        folder = local_folder(location)
        saved = folder / CONFIG_FILE
        if saved.exists():  # a late-interaction model saved by densekit: its own settings
            settings = _settings(_read_json(saved), saved)
        projection = None if saved.exists() else colbert_projection(folder)
        self.settings = settings or _settings_of(folder, projection)
        self.location = location
        self._name = name
        self.device = resolve_device(device)
        self.batch = batch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        if self.tokenizer.mask_token_id is None:
            raise InputError(f"{location}: its tokenizer has no [MASK] token to pad queries with")
        self.model = AutoModel.from_pretrained(folder).to(self.device)
        hidden = int(self.model.config.hidden_size)
        self.projection = torch.nn.Linear(hidden, self.settings.dimension, bias=False).to(
            self.device
        )
        if (folder / PROJECTION_FILE).exists():
            state = torch.load(
                folder / PROJECTION_FILE, map_location=self.device, weights_only=True
            )
            self.projection.load_state_dict(state)
        elif projection is not None:
            if tuple(projection.shape) != (self.settings.dimension, hidden):
                raise InputError(
                    f"{location}: its ColBERT projection is {tuple(projection.shape)}, the model "
                    f"gives {hidden} dimensions; the checkpoint is inconsistent"
                )
            with torch.no_grad():
                self.projection.weight.copy_(projection)
        else:  # a fixed start, so two processes that load the same base agree
            generator = torch.Generator().manual_seed(0)
            weight = torch.randn(self.settings.dimension, hidden, generator=generator)
            with torch.no_grad():
                self.projection.weight.copy_(weight / hidden**0.5)
        self._skip = self._skipped_ids()
        # A fast tokenizer is not thread-safe, and a server encodes from many threads.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        """The name it was loaded by (a registry name, path or hub id)."""
        return self._name or f"late-interaction:{Path(self.location).name}"

    @property
    def dimension(self) -> int:
        return self.settings.dimension

    @property
    def fingerprint(self) -> str:
        weights = weights_digest(
            [*self.model.named_parameters(), *self.projection.named_parameters()]
        )
        # Settings at their defaults are left out, so fingerprints made before a setting
        # existed stay valid.
        settings = {
            key: value
            for key, value in asdict(self.settings).items()
            if key not in _LATER_SETTINGS or value != _LATER_SETTINGS[key]
        }
        return settings_digest(weights, settings)

    def _skipped_ids(self) -> set[int]:
        """Token ids whose vectors a document does not keep: punctuation, and unless the
        settings keep them, special tokens (padding never counts: it is not attended)."""
        ids = set() if self.settings.keep_special_tokens else set(self.tokenizer.all_special_ids)
        for symbol in string.punctuation:
            ids.update(self.tokenizer.encode(symbol, add_special_tokens=False))
        return ids

    def _marker(self, query: bool) -> list[int]:
        """The ids that mark a query or a document, inserted after the first token: the marker
        when the vocabulary has it as one token (PyLate adds ``[Q]``/``[D]``), else BERT's
        [unused0] / [unused1] (Stanford ColBERT's), else the marker's text."""
        text = self.settings.query_marker if query else self.settings.document_marker
        for token in (text, text.strip(), "[unused0]" if query else "[unused1]"):
            found = self.tokenizer.convert_tokens_to_ids(token)
            if isinstance(found, int) and found != self.tokenizer.unk_token_id:
                return [found]
        return list(self.tokenizer.encode(text.strip(), add_special_tokens=False))

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
        if query:  # query augmentation: padding becomes [MASK], whose vectors are kept
            ids = torch.where(attention.bool(), ids, self.tokenizer.mask_token_id)
            if settings.attend_to_masks:
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

        # Longest first, so each batch pads to texts of about its own length.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        found: list[np.ndarray] = [np.empty(0)] * len(texts)
        self.model.eval()
        with self._lock, torch.inference_mode():
            for start in range(0, len(order), self.batch):
                chosen = order[start : start + self.batch]
                vectors, kept = self.token_vectors([texts[i] for i in chosen], query=query)
                vectors = vectors.float().cpu().numpy()
                for i, row, mask in zip(chosen, vectors, kept.cpu().numpy(), strict=True):
                    found[i] = np.ascontiguousarray(row[mask], dtype=np.float32)
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


def local_folder(location: str) -> Path:
    """``location``'s folder: itself when it is one, else a hub model's files, downloaded
    (or found in the hub's cache)."""
    folder = Path(location).expanduser()
    if folder.is_dir():
        return folder
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(location))
    except Exception as exc:  # the hub's errors differ by version; all mean "not found"
        raise InputError(
            f"{location}: not a model folder, and the model hub did not give it ({exc}); give a "
            "folder from densekit train --loss colbert or a ColBERT checkpoint"
        ) from None


def colbert_projection(folder: Path) -> Any | None:
    """The projection weight (dimension x hidden) of a ColBERT checkpoint made elsewhere:
    PyLate's Dense module, or Stanford ColBERT's ``linear.weight``; None for a plain encoder."""
    modules = folder / "modules.json"
    candidates: list[Path] = []
    if modules.exists():
        for module in json.loads(modules.read_text("utf-8")):
            if module.get("type", "").endswith("Dense") and module.get("path"):
                candidates += _weight_files(folder / module["path"])
    candidates += _weight_files(folder)
    for path in candidates:
        weights = _read_weights(path)
        for key in ("linear.weight", "linear.linear.weight"):
            if key in weights:
                if key.replace("weight", "bias") in weights or not _identity(path.parent):
                    raise InputError(
                        f"{path.parent}: a Dense layer with a bias or an activation is not a "
                        "ColBERT projection; give a late-interaction model"
                    )
                return weights[key].float()
    return None


def _identity(module: Path) -> bool:
    """Whether a sentence-transformers Dense module folder applies no activation."""
    config = module / "config.json"
    if not config.exists():
        return True
    # A model's own config (Stanford's layout) names no activation: nothing is applied.
    activation = _read_json(config).get("activation_function", "Identity")
    return str(activation).endswith("Identity")


def _weight_files(folder: Path) -> list[Path]:
    return [p for p in (folder / "model.safetensors", folder / "pytorch_model.bin") if p.exists()]


def _read_weights(path: Path) -> dict[str, Any]:
    import torch

    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    return torch.load(path, map_location="cpu", weights_only=True)


def _settings_of(folder: Path, projection: Any | None) -> LateInteractionSettings:
    """Settings a ColBERT checkpoint records (Stanford's ``artifact.metadata``, PyLate's
    ``config_sentence_transformers.json``); the defaults for a plain encoder."""
    if projection is None:
        return LateInteractionSettings()
    values: dict[str, Any] = {
        "dimension": int(projection.shape[0]),
        "attend_to_masks": False,
        "keep_special_tokens": True,
    }
    stanford = folder / "artifact.metadata"
    pylate = folder / "config_sentence_transformers.json"
    recorded: dict[str, Any] = {}
    if stanford.exists():
        meta = _read_json(stanford)
        recorded = {
            "query_tokens": meta.get("query_maxlen"),
            "document_tokens": meta.get("doc_maxlen"),
            "attend_to_masks": meta.get("attend_to_mask_tokens"),
        }
    elif pylate.exists():
        meta = _read_json(pylate)
        recorded = {
            "query_tokens": meta.get("query_length"),
            "document_tokens": meta.get("document_length"),
            "query_marker": meta.get("query_prefix") or None,
            "document_marker": meta.get("document_prefix") or None,
            "attend_to_masks": meta.get("attend_to_expansion_tokens"),
        }
    return _settings(values | {k: v for k, v in recorded.items() if v is not None}, folder)


def _settings(values: dict[str, Any], where: Path) -> LateInteractionSettings:
    try:
        return LateInteractionSettings(**values)
    except TypeError as exc:  # a key densekit does not know
        raise InputError(f"{where}: unreadable late-interaction settings ({exc})") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        found = json.loads(path.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not readable JSON ({exc}); the model folder is damaged"
        ) from None
    if not isinstance(found, dict):
        raise InputError(f"{path}: expected a JSON object; the model folder is damaged")
    return found
