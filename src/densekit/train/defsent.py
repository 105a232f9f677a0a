"""DefSent+ (Liu, 2024): sentence embeddings trained on dictionary definitions, no labelled
pairs needed.

Each entry of a dictionary (a word or any phrase) is embedded by the base model itself, once,
as a phrase. Those entry vectors are projected into a more isotropic space:

- ``quasi``: centred, and each dimension scaled to unit variance;
- ``full``: whitened (centred, decorrelated and scaled by the entries' covariance, ZCA);
- ``off``: left as the base model gives them.

The model is then trained so that the embedding of each definition sentence picks out its own
entry's projected vector among the batch's entries (InfoNCE over cosine similarities; rows of
the same entry or the same definition, a synonym's, are not counted as negatives). The
sentences learn the space of the entries, which spreads meaning more evenly than the base
model's anisotropic one.

Training runs in sentence-transformers' trainer, with checkpoints beside the output and resume
as ``densekit train`` has them; the result is a plain sentence-transformers folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from densekit.corpus.dictionary import (
    WORDNET_FOLDER,
    Definition,
    read_dictionary_tsv,
    read_wordnet,
)
from densekit.encode.registry import resolve_model
from densekit.errors import InputError, MissingDependencyError
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.train.checkpoints import prepare_checkpoints
from densekit.train.checks import positive, whole
from densekit.train.result import CARD_FILE, TrainResult
from densekit.train.trainer_arguments import checkpointed_arguments

ISOTROPY = ("quasi", "full", "off")
_WHITENING_FLOOR = 1e-6  # relative to the largest eigenvalue: directions the entries lack


@dataclass(frozen=True)
class DefSentTraining:
    """How to train: ``max_pairs`` keeps a seeded sample of the dictionary (None: all of it)."""

    base: str = "minilm"
    isotropy: str = "quasi"
    epochs: int = 1
    batch: int = 64
    learning_rate: float = 2e-5
    temperature: float = 0.05
    warmup: float = 0.1
    max_length: int = 64
    max_pairs: int | None = None
    checkpoint_steps: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        if self.isotropy not in ISOTROPY:
            raise InputError(
                f"isotropy must be one of {', '.join(ISOTROPY)}, not {self.isotropy!r}"
            )
        for name in ("epochs", "batch", "max_length", "checkpoint_steps"):
            whole(getattr(self, name), name, minimum=1)
        if self.batch < 2:
            raise InputError("batch must be at least 2: each definition needs other entries")
        if self.max_pairs is not None:
            whole(self.max_pairs, "max_pairs", minimum=2)
        positive(self.learning_rate, "learning_rate")
        positive(self.temperature, "temperature")
        if not 0 <= self.warmup < 1:
            raise InputError("warmup must be in [0, 1)")


@dataclass(frozen=True)
class DefSentConfig:
    """A training into ``out`` from ``dictionary`` (a TSV of entry<TAB>definition lines), or
    from WordNet in ``wordnet`` when no dictionary is given."""

    out: str | Path
    dictionary: str | Path | None = None
    wordnet: str | Path = WORDNET_FOLDER
    settings: DefSentTraining = field(default_factory=DefSentTraining)
    overwrite: bool = False
    restart: bool = False
    progress: bool = True


@dataclass(frozen=True)
class DefSentReport(TrainResult):
    base: str
    dictionary: str
    pairs: int
    entries: int
    isotropy: str
    steps: int
    resumed_from: str | None
    seconds: float

    def summary(self) -> list[str]:
        resumed = f", resumed from {self.resumed_from}" if self.resumed_from else ""
        return [
            f"trained {self.out} from {self.base} on {self.pairs} definitions of "
            f"{self.entries} entries ({self.dictionary}), isotropy {self.isotropy}",
            f"{self.steps} steps, {self.seconds:.0f} s{resumed}",
            f"use it as an encoder: --model {self.out}",
        ]


def read_definitions(config: DefSentConfig) -> tuple[list[Definition], str]:
    """The dictionary's pairs (a seeded sample of ``max_pairs``), and where they came from."""
    settings = config.settings
    if config.dictionary is not None:
        pairs, source = read_dictionary_tsv(config.dictionary), str(config.dictionary)
    else:
        pairs, source = read_wordnet(Path(config.wordnet)), f"WordNet in {config.wordnet}"
    if settings.max_pairs is not None and len(pairs) > settings.max_pairs:
        keep = np.random.default_rng(settings.seed).choice(len(pairs), settings.max_pairs, False)
        pairs = [pairs[i] for i in sorted(keep)]
    entries = len({pair.entry for pair in pairs})
    if entries < settings.batch:
        raise InputError(
            f"{source}: {entries} distinct entries, fewer than the batch of {settings.batch}; "
            "give a larger dictionary or a smaller --batch"
        )
    return pairs, source


def isotropic_targets(vectors: np.ndarray, isotropy: str) -> np.ndarray:
    """Entry vectors projected as ``isotropy`` says, then scaled to unit length."""
    vectors = vectors.astype(np.float64)
    if isotropy != "off":
        vectors = vectors - vectors.mean(axis=0)
    if isotropy == "quasi":
        vectors = vectors / np.maximum(vectors.std(axis=0), 1e-12)
    elif isotropy == "full":
        values, basis = np.linalg.eigh(np.cov(vectors, rowvar=False))
        values = np.maximum(values, _WHITENING_FLOOR * values.max())
        vectors = vectors @ (basis / np.sqrt(values)) @ basis.T
    norms = np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return (vectors / norms).astype(np.float32)


def train_defsent(config: DefSentConfig) -> DefSentReport:
    """Train ``settings.base`` on the dictionary's definitions into ``config.out``."""
    settings = config.settings
    out = Path(config.out)
    refuse_to_replace(out, config.overwrite)
    started = time.perf_counter()
    spec = resolve_model(settings.base)
    pairs, source = read_definitions(config)
    digest = hashlib.sha256(json.dumps([(p.entry, p.definition) for p in pairs]).encode())
    run = {
        "dictionary": source,
        "pairs": len(pairs),
        "pairs_sha256": digest.hexdigest(),  # an edited dictionary never resumes
        "base": spec.location,
        "settings": asdict(settings),
    }
    checkpoints = out.with_name(f".{out.name}.checkpoints")
    resume = prepare_checkpoints(checkpoints, run, config.restart)
    model, steps = _fit(spec.location, pairs, settings, checkpoints, resume, config.progress)
    report = DefSentReport(
        out=str(out),
        base=spec.name,
        dictionary=source,
        pairs=len(pairs),
        entries=len({pair.entry for pair in pairs}),
        isotropy=settings.isotropy,
        steps=steps,
        resumed_from=resume,
        seconds=round(time.perf_counter() - started, 1),
    )

    def write(folder: Path) -> None:
        model.save_pretrained(str(folder))
        card = {**report.to_dict(), "settings": asdict(settings)}
        (folder / CARD_FILE).write_text(json.dumps(card, indent=2))

    publish_folder(out, write)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return report


def _fit(
    location: str,
    pairs: Sequence[Definition],
    settings: DefSentTraining,
    checkpoints: Path,
    resume: str | None,
    progress: bool,
) -> tuple[Any, int]:
    try:
        from datasets import Dataset
        from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    except ImportError:
        raise MissingDependencyError("datasets", "train") from None
    import torch

    from densekit.train.losses.definitions import DefinitionLoss

    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)
    torch.manual_seed(settings.seed)
    model = SentenceTransformer(location)
    model.max_seq_length = settings.max_length
    entries = sorted({pair.entry for pair in pairs})
    definitions = {text: i for i, text in enumerate(sorted({pair.definition for pair in pairs}))}
    # The entries as the base model reads them, before any training step.
    vectors = model.encode(entries, batch_size=256, show_progress_bar=progress)
    targets = torch.from_numpy(isotropic_targets(vectors, settings.isotropy))
    entry_ids = {entry: i for i, entry in enumerate(entries)}
    columns = {
        "definition": [pair.definition for pair in pairs],
        "label": [[entry_ids[pair.entry], definitions[pair.definition]] for pair in pairs],
    }
    arguments = checkpointed_arguments(checkpoints, settings, progress=progress)
    trainer = SentenceTransformerTrainer(
        model=model,
        args=arguments,
        train_dataset=Dataset.from_dict(columns),
        loss=DefinitionLoss(model, targets, settings.temperature),
    )
    # The trainer prints its closing metrics to stdout, where a --json report goes.
    with contextlib.redirect_stdout(sys.stderr):
        trainer.train(resume_from_checkpoint=resume)
    return model, int(trainer.state.global_step)
