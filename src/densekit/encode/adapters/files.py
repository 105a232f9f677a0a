"""Saving and loading adapters: a folder with the weights and what they were trained for.

Two kinds share the format: ``residual`` (a :class:`ResidualAdapter`) and ``lexsem`` (a
:class:`LexSemBridge`, saved with the tokenizer whose ids it reads, so it needs nothing else).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from densekit.encode.adapters.lexsem import LexSemBridge, LexSemSpec
from densekit.encode.adapters.residual import AdapterSpec, ResidualAdapter
from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace

WEIGHTS = "adapter.safetensors"
CARD = "adapter.json"
TOKENIZER = "tokenizer"

Adapter = ResidualAdapter | LexSemBridge


def adapter_kind(adapter: Adapter) -> str:
    return "lexsem" if isinstance(adapter, LexSemBridge) else "residual"


def save_adapter(
    adapter: Adapter,
    out: str | Path,
    *,
    encoder_fingerprint: str,
    info: dict[str, Any] | None = None,
    tokenizer: Any = None,
    overwrite: bool = False,
) -> Path:
    """Write ``adapter`` to the folder ``out`` (published whole, or not at all)."""
    from safetensors.torch import save_file

    out = Path(out)
    refuse_to_replace(out, overwrite)
    card = {
        **(info or {}),  # first: what the adapter is can never be overwritten by notes
        "kind": adapter_kind(adapter),
        "spec": adapter.spec.to_dict(),
        "dimension": adapter.dimension,
        "encoder_fingerprint": encoder_fingerprint,
    }
    if isinstance(adapter, LexSemBridge):
        if tokenizer is None:
            raise InputError("a lexical bridge is saved with the tokenizer whose ids it reads")
        card["vocabulary"] = adapter.vocabulary
        if adapter.head is not None:
            card["hidden_size"] = adapter.head.in_features

    def write(folder: Path) -> None:
        tensors = {k: v.detach().contiguous() for k, v in adapter.state().items()}
        save_file(tensors, str(folder / WEIGHTS))
        (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")
        if tokenizer is not None:
            tokenizer.save_pretrained(str(folder / TOKENIZER))

    publish_folder(out, write)
    return out


def load_adapter(
    folder: str | Path, *, encoder_fingerprint: str | None = None
) -> tuple[Adapter, dict[str, Any]]:
    """The adapter in ``folder`` and its card; with ``encoder_fingerprint``, an adapter trained
    on another encoder's vectors is refused (its map means nothing for these)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(f"{folder}: not an adapter folder (no {CARD} and {WEIGHTS})")
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
        kind = card.get("kind", "residual")
        dimension = card["dimension"]
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"dimension {dimension!r} is not a positive whole number")
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{folder / CARD}: unreadable adapter card ({exc})") from None
    try:
        tensors = load_file(str(folder / WEIGHTS))
    except (OSError, SafetensorError) as exc:
        raise InputError(f"{folder / WEIGHTS}: weights do not fit the card ({exc})") from None
    try:
        adapter: Adapter
        if kind == "residual":
            adapter = ResidualAdapter(AdapterSpec(**card["spec"]), dimension)
        elif kind == "lexsem":
            adapter = LexSemBridge(
                LexSemSpec(**card["spec"]),
                card["vocabulary"],
                dimension,
                idf=tensors["idf"].numpy() if "idf" in tensors else None,
                hidden_size=card.get("hidden_size"),
            )
        else:
            raise ValueError(f"unknown adapter kind {kind!r}")
    except (ValueError, KeyError, TypeError, InputError, SafetensorError) as exc:
        raise InputError(f"{folder / CARD}: unreadable adapter card ({exc})") from None
    trained_for = card.get("encoder_fingerprint")
    if encoder_fingerprint is not None and trained_for != encoder_fingerprint:
        raise InputError(
            f"{folder}: this adapter was trained on vectors of encoder {trained_for!r}, "
            f"not {encoder_fingerprint!r}; train one for this encoder"
        )
    try:
        adapter.load_state(tensors)
    except (RuntimeError, KeyError) as exc:
        raise InputError(f"{folder / WEIGHTS}: weights do not fit the card ({exc})") from None
    return adapter, card
