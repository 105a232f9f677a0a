"""Saving and loading adapters: a folder with the weights and what they were trained for."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from densekit.adapt.residual import AdapterSpec, ResidualAdapter
from densekit.errors import InputError
from densekit.store.durability import publish_folder, refuse_to_replace

WEIGHTS = "adapter.safetensors"
CARD = "adapter.json"


def save_adapter(
    adapter: ResidualAdapter,
    out: str | Path,
    *,
    encoder_fingerprint: str,
    info: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``adapter`` to the folder ``out`` (published whole, or not at all)."""
    from safetensors.torch import save_file

    out = Path(out)
    refuse_to_replace(out, overwrite)
    card = {
        **(info or {}),  # first: what the adapter is can never be overwritten by notes
        "spec": adapter.spec.to_dict(),
        "dimension": adapter.dimension,
        "encoder_fingerprint": encoder_fingerprint,
    }

    def write(folder: Path) -> None:
        tensors = {k: v.detach().contiguous() for k, v in adapter.state().items()}
        save_file(tensors, str(folder / WEIGHTS))
        (folder / CARD).write_text(json.dumps(card, indent=2), encoding="utf-8")

    publish_folder(out, write)
    return out


def load_adapter(
    folder: str | Path, *, encoder_fingerprint: str | None = None
) -> tuple[ResidualAdapter, dict[str, Any]]:
    """The adapter in ``folder`` and its card; with ``encoder_fingerprint``, an adapter trained
    on another encoder's vectors is refused (its map means nothing for these)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
        raise InputError(f"{folder}: not an adapter folder (no {CARD} and {WEIGHTS})")
    try:
        card = json.loads((folder / CARD).read_text(encoding="utf-8"))
        spec = AdapterSpec(**card["spec"])
        dimension = card["dimension"]
        if isinstance(dimension, bool) or not isinstance(dimension, int) or dimension < 1:
            raise ValueError(f"dimension {dimension!r} is not a positive whole number")
    except (ValueError, KeyError, TypeError, InputError) as exc:
        raise InputError(f"{folder / CARD}: unreadable adapter card ({exc})") from None
    trained_for = card.get("encoder_fingerprint")
    if encoder_fingerprint is not None and trained_for != encoder_fingerprint:
        raise InputError(
            f"{folder}: this adapter was trained on vectors of encoder {trained_for!r}, "
            f"not {encoder_fingerprint!r}; train one for this encoder"
        )
    adapter = ResidualAdapter(spec, dimension)
    try:
        adapter.load_state(load_file(str(folder / WEIGHTS)))
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise InputError(f"{folder / WEIGHTS}: weights do not fit the card ({exc})") from None
    return adapter, card
