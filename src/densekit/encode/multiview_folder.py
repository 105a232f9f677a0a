"""MVP models on disk, and new ones built from a backbone.

A model folder holds ``mvp.json`` (views, widths, how the backbone is read), ``backbone/`` (the
transformer and its tokenizer, with the view tokens in its vocabulary) and
``decoder.safetensors`` (the anchor decoder). A folder lacking any of them is refused by name.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from densekit.encode.causal import causal_lm_location, load_pretrained
from densekit.encode.decoder import LLM_PREFIX, check_bidirectional
from densekit.encode.multiview import (
    AnchorDecoder,
    MultiViewModel,
    MultiViewShape,
    attention_heads,
    view_tokens,
)
from densekit.encode.registry import resolve_model
from densekit.errors import InputError

CONFIG_FILE = "mvp.json"
BACKBONE_DIR = "backbone"
DECODER_FILE = "decoder.safetensors"
FORMAT = 1
T5_TYPES = ("t5", "mt5", "umt5")


def is_multiview_folder(location: str | Path) -> bool:
    return (Path(location) / CONFIG_FILE).is_file()


def new_multiview(base: str, views: int, max_length: int, decoder_layers: int = 1) -> Any:
    """An untrained :class:`MultiViewModel` on ``base``: a registry name (``minilm``), an
    encoder folder or hub name (BERT or T5 family), or ``llm:NAME`` (a decoder LLM read with
    bidirectional attention). An MVP folder continues its training, with its own views."""
    if base.startswith(LLM_PREFIX):
        name, _, options = base[len(LLM_PREFIX) :].partition("#")
        if options:
            raise InputError(
                f"{base}: an MVP backbone is read with bidirectional attention in float32; "
                f"drop #{options}"
            )
        backbone, tokenizer, kind = _decoder_llm(causal_lm_location(name))
    else:
        location = resolve_model(base).location
        if is_multiview_folder(location):
            model = load_multiview(location)
            if (model.shape.views, model.shape.decoder_layers) != (views, decoder_layers):
                raise InputError(
                    f"{base}: the model has {model.shape.views} views and "
                    f"{model.shape.decoder_layers} decoder layers, not {views} and "
                    f"{decoder_layers}; pass --views {model.shape.views} to train it on"
                )
            # Trained on at the length asked for (positions permitting).
            limit = _position_limit(model.backbone, model.tokenizer, max_length)
            model.shape = dataclasses.replace(model.shape, max_length=min(max_length, limit))
            return model
        backbone, tokenizer, kind = _encoder(location)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    _read_from_the_start(tokenizer)
    tokenizer.add_special_tokens({"additional_special_tokens": view_tokens(views)})
    backbone.resize_token_embeddings(len(tokenizer))
    width = backbone.config.hidden_size if kind != "t5-encoder" else backbone.config.d_model
    shape = MultiViewShape(
        views=views,
        width=width,
        heads=attention_heads(width),
        decoder_layers=decoder_layers,
        max_length=min(max_length, _position_limit(backbone, tokenizer, max_length)),
        backbone=kind,
    )
    return MultiViewModel(backbone, tokenizer, shape, AnchorDecoder(shape))


def save_multiview(model: Any, folder: Path) -> None:
    """Write ``model`` (a :class:`MultiViewModel`) into ``folder``."""
    from safetensors.torch import save_file

    model.backbone.save_pretrained(str(folder / BACKBONE_DIR))
    model.tokenizer.save_pretrained(str(folder / BACKBONE_DIR))
    state = {k: v.detach().contiguous() for k, v in model.decoder.state_dict().items()}
    save_file(state, str(folder / DECODER_FILE))
    config = {"format": FORMAT, **model.shape.__dict__}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def load_multiview(location: str | Path) -> Any:
    """The :class:`MultiViewModel` in ``location``, in evaluation mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(location)
    shape = _read_shape(folder)
    for needed, what in ((DECODER_FILE, "its decoder"), (BACKBONE_DIR, "its backbone")):
        if not (folder / needed).exists():
            raise InputError(
                f"{folder}: an MVP model folder without {what} ({needed}); copy the whole "
                "folder that densekit train-reranker --kind mvp wrote"
            )
    backbone_dir = str(folder / BACKBONE_DIR)
    if shape.backbone == "decoder-llm":
        backbone, tokenizer, _ = _decoder_llm(backbone_dir)
    else:
        backbone, tokenizer, _ = _encoder(backbone_dir)
    _read_from_the_start(tokenizer)
    decoder = AnchorDecoder(shape)
    try:
        decoder.load_state_dict(load_file(str(folder / DECODER_FILE)))
    except (RuntimeError, OSError, SafetensorError) as exc:
        raise InputError(
            f"{folder / DECODER_FILE}: not the decoder of this model ({shape.views} views, "
            f"width {shape.width}): {str(exc).splitlines()[0]}"
        ) from None
    model = MultiViewModel(backbone, tokenizer, shape, decoder)
    model.eval()
    return model.to(accelerator())


def accelerator() -> str:
    """Where MVP models run: the GPU when there is one, else the CPU."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _read_shape(folder: Path) -> MultiViewShape:
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise InputError(
            f"{folder}: not an MVP model (no {CONFIG_FILE}); train one with densekit "
            "train-reranker --kind mvp"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.pop("format", None) != FORMAT:
            raise ValueError(f"format is not {FORMAT}")
        return MultiViewShape(**data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: not a readable MVP model config ({exc})") from None


def _encoder(location: str) -> tuple[Any, Any, str]:
    from transformers import AutoConfig, AutoModel, AutoTokenizer, T5EncoderModel

    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        config = AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load {location!r} ({_first_line(exc)})") from None
    if any(a.endswith("ForCausalLM") for a in config.architectures or []):
        raise InputError(
            f"{location!r} is a causal LM; name it llm:{location} to read it with "
            "bidirectional attention"
        )
    if config.model_type in T5_TYPES:
        auto, kind = T5EncoderModel, "t5-encoder"
    elif getattr(config, "is_encoder_decoder", False):
        raise InputError(
            f"{location!r} is a {config.model_type} encoder-decoder; the MVP backbone is an "
            "encoder (BERT family), a T5 encoder or an llm: decoder"
        )
    else:
        auto, kind = AutoModel, "encoder"
    try:
        return load_pretrained(auto, location), AutoTokenizer.from_pretrained(location), kind
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load {location!r} ({_first_line(exc)})") from None


def _decoder_llm(location: str) -> tuple[Any, Any, str]:
    from transformers import AutoModel, AutoTokenizer

    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        backbone = load_pretrained(AutoModel, location, dtype="float32", attn_implementation="sdpa")
        tokenizer = AutoTokenizer.from_pretrained(location)
    except (OSError, ValueError) as exc:
        raise InputError(f"could not load {location!r} ({_first_line(exc)})") from None
    check_bidirectional(backbone, backbone.config.model_type)
    return backbone, tokenizer, "decoder-llm"


def _read_from_the_start(tokenizer: Any) -> None:
    """Pad and cut on the right: the view tokens stay first, at the same positions (a
    bidirectional LLM backbone counts positions from the first token)."""
    tokenizer.padding_side = "right"
    tokenizer.truncation_side = "right"


def _position_limit(backbone: Any, tokenizer: Any, wanted: int) -> int:
    """The most tokens the backbone reads: its position table, or less where the tokenizer
    says so (RoBERTa's table holds two offset rows)."""
    limits = [getattr(backbone.config, "max_position_embeddings", None)]
    limits.append(getattr(tokenizer, "model_max_length", None))
    found = [int(limit) for limit in limits if limit and limit < 1_000_000]
    return min(found) if found else wanted


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
