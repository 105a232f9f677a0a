"""Training a Binary Paragraph Vector model on a raw corpus (``densekit train-bpv``).

Every document gets its own parameters, trained with the shared word predictor so that its code
(see :mod:`densekit.encode.binary_pv`) predicts its terms. Nothing but the corpus is needed: no
judgements, no pretrained model. The model folder is written once training ends, atomically;
an interrupted run leaves nothing behind.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from densekit.corpus.document import Document
from densekit.encode.binary_pv import (
    BinaryPVConfig,
    BinaryPVModel,
    BinaryPVNetwork,
    terms,
    weighted_counts,
)
from densekit.errors import InputError
from densekit.files.durability import publish_folder, refuse_to_replace
from densekit.train.checks import positive, whole
from densekit.train.result import TrainResult

_INITIAL_SPREAD = 0.1  # document parameters start near 0: random, nearly undecided bits


@dataclass(frozen=True)
class BinaryPVTraining:
    """``real_dim`` > 0 trains the real-valued + binary variant; ``sample`` is word2vec's
    subsampling threshold (0: every term counts fully); ``noise`` is the standard deviation of
    the Gaussian noise added to the code layer's inputs in training, which pushes them away
    from the threshold (0: rounding alone)."""

    bits: int = 128
    real_dim: int = 0
    ngrams: int = 1
    min_count: int = 2
    max_vocabulary: int = 100_000
    sample: float = 1e-3
    epochs: int = 50
    batch: int = 128
    learning_rate: float = 0.01
    document_learning_rate: float = 0.1
    noise: float = 1.0
    inference_steps: int = 100
    inference_lr: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        self.model_config()  # checks bits, real_dim and ngrams
        for name in ("min_count", "max_vocabulary", "epochs", "batch", "inference_steps"):
            whole(getattr(self, name), name, minimum=1)
        for name in ("learning_rate", "document_learning_rate", "inference_lr"):
            positive(getattr(self, name), name)
        for name in ("sample", "noise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0:
                raise InputError(f"{name} must be a finite number of 0 or more, got {value!r}")

    def model_config(self) -> BinaryPVConfig:
        return BinaryPVConfig(
            bits=self.bits,
            real_dim=self.real_dim,
            ngrams=self.ngrams,
            inference_steps=self.inference_steps,
            inference_lr=self.inference_lr,
        )


@dataclass(frozen=True)
class BinaryPVResult(TrainResult):
    documents: int  # distinct texts trained on (repeated texts counted in duplicate_texts)
    duplicate_texts: int
    without_terms: int
    vocabulary: int
    bits: int
    real_dim: int
    steps: int
    first_loss: float
    last_loss: float
    seconds: float

    def warnings(self) -> list[str]:
        if not self.without_terms:
            return []
        return [
            f"{self.without_terms} documents have no term kept in the vocabulary: they all get "
            "the code of an empty text (lower --min-count to keep rarer terms)"
        ]

    def summary(self) -> list[str]:
        kind = f"{self.bits} bits" + (f" + {self.real_dim}-d real" if self.real_dim else "")
        return [
            f"trained {self.out}: Binary PV, {kind}, on {self.documents} documents "
            f"({self.vocabulary} terms)",
            f"loss {self.first_loss:.4f} -> {self.last_loss:.4f} in {self.steps} steps, "
            f"{self.seconds:.0f} s",
            f"use it as an encoder: --model bpv:{self.out}",
        ]


@dataclass(frozen=True)
class _Corpus:
    """Distinct texts as rows of term ids (CSR)."""

    offsets: np.ndarray
    term_ids: np.ndarray
    vocabulary: list[str]
    term_weights: np.ndarray
    duplicates: int

    @property
    def rows(self) -> int:
        return len(self.offsets) - 1


def _read_terms(documents: Iterable[Document], settings: BinaryPVTraining) -> _Corpus:
    seen: set[str] = set()
    term_lists: list[list[str]] = []
    duplicates = 0
    for document in documents:
        text = document.content
        if text in seen:
            duplicates += 1
            continue
        seen.add(text)
        term_lists.append(terms(text, settings.ngrams))
    if not term_lists:
        raise InputError("the corpus holds no documents to train on")
    counts = Counter(term for found in term_lists for term in found)
    kept = sorted(
        (term for term, count in counts.items() if count >= settings.min_count),
        key=lambda term: (-counts[term], term),
    )[: settings.max_vocabulary]
    if not kept:
        raise InputError(
            f"no term occurs at least {settings.min_count} times (--min-count); "
            "lower it or train on more text"
        )
    ids = {term: i for i, term in enumerate(kept)}
    frequency = np.array([counts[t] for t in kept], dtype=np.float64)
    frequency /= frequency.sum()
    weights = np.ones(len(kept))
    if settings.sample:
        # word2vec keeps a term occurrence with this probability: its expected weight here.
        ratio = settings.sample / frequency
        weights = np.minimum(1.0, np.sqrt(ratio) + ratio)
    rows = [[ids[t] for t in found if t in ids] for found in term_lists]
    offsets = np.cumsum([0] + [len(row) for row in rows], dtype=np.int64)
    return _Corpus(
        offsets=offsets,
        term_ids=np.fromiter((i for row in rows for i in row), dtype=np.int64, count=offsets[-1]),
        vocabulary=kept,
        term_weights=weights.astype(np.float32),
        duplicates=duplicates,
    )


def train_binary_pv(
    documents: Iterable[Document],
    out: str | Path,
    settings: BinaryPVTraining | None = None,
    *,
    overwrite: bool = False,
    progress: bool = True,
) -> BinaryPVResult:
    """Train a Binary PV model on ``documents`` and write it to ``out`` (see the module)."""
    import torch
    from tqdm.auto import tqdm

    settings = settings or BinaryPVTraining()
    out = Path(out)
    refuse_to_replace(out, overwrite)
    started = time.perf_counter()
    corpus = _read_terms(documents, settings)
    config = settings.model_config()
    torch.manual_seed(settings.seed)
    network = BinaryPVNetwork(config, len(corpus.vocabulary))
    parameters = torch.nn.Embedding(corpus.rows, config.document_dim, sparse=True)
    torch.nn.init.normal_(parameters.weight, std=_INITIAL_SPREAD)
    shared = torch.optim.Adam(network.layers.parameters(), lr=settings.learning_rate)
    own = torch.optim.SparseAdam(parameters.parameters(), lr=settings.document_learning_rate)
    order = np.random.default_rng(settings.seed)
    per_epoch = math.ceil(corpus.rows / settings.batch)
    losses: list[float] = []
    bar = tqdm(
        total=settings.epochs * per_epoch, desc="training", unit="step", disable=not progress
    )
    with bar:
        for _ in range(settings.epochs):
            epoch_loss = 0.0
            for batch in np.array_split(order.permutation(corpus.rows), per_epoch):
                counts = weighted_counts(
                    [corpus.term_ids[corpus.offsets[r] : corpus.offsets[r + 1]] for r in batch],
                    corpus.term_weights,
                )
                loss = network.loss(parameters(torch.from_numpy(batch)), counts, settings.noise)
                loss = loss.mean()
                shared.zero_grad()
                own.zero_grad()
                loss.backward()
                shared.step()
                own.step()
                epoch_loss += float(loss.detach()) * len(batch) / corpus.rows
                bar.update()
            losses.append(epoch_loss)
            bar.set_postfix(loss=f"{epoch_loss:.4f}")
    model = BinaryPVModel(config, corpus.vocabulary, corpus.term_weights, network)
    empty = int(np.sum(np.diff(corpus.offsets) == 0))
    result = BinaryPVResult(
        out=str(out),
        documents=corpus.rows,
        duplicate_texts=corpus.duplicates,
        without_terms=empty,
        vocabulary=len(corpus.vocabulary),
        bits=config.bits,
        real_dim=config.real_dim,
        steps=settings.epochs * per_epoch,
        first_loss=losses[0],
        last_loss=losses[-1],
        seconds=round(time.perf_counter() - started, 1),
    )
    report = {"settings": asdict(settings), "result": result.to_dict()}
    publish_folder(out, lambda staging: model.save(staging, report))
    return result
