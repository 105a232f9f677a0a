"""Training a learned binary head on queries, so that Hamming distance between codes ranks
documents as the float vectors do, and judged positives first.

The head (:class:`~densekit.index.learned_binary.BinaryHead`, usually ITQ's) is trained end to
end through its binarisation: each code bit is relaxed to ``tanh(s * z)``, with the slope ``s``
annealed from 1 to ``SHARPEST`` so that the relaxation ends close to the signs it stands for.
The loss, for a batch of query vectors against a set of document vectors:

- similarity preservation: the cross-entropy from the float model's softmax over the documents
  (at ``temperature``) to the codes' softmax (their agreement ``c_q . c_d / bits``, scaled by a
  learned factor): the codes learn the float ranking, which needs no judgements;
- contrastive, when judgements are given and ``contrastive`` > 0: each judged positive's
  log-probability under the codes' softmax.

Documents per step: all of them, or (``negatives``) that many sampled plus each batch query's
top float matches, so large collections train in bounded memory.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from densekit.adapt.training import AdapterTraining
from densekit.errors import InputError
from densekit.index.learned_binary import BinaryHead

SHARPEST = 10.0  # the relaxation's slope at the end of training
# The codes' agreement (in [-1, 1]) times this is the first step's logits: about the spread of
# the float teacher's logits over a query's likely matches.
INITIAL_SCALE = 20.0
TEACHER_TOP = 32  # float top matches of each query always in its step's documents
_SCORE_BLOCK = 4096
# `densekit adapt --kind binary`'s training: many short passes over the queries (each pass
# is a few steps on a small query set) at a sharp teacher temperature.
BINARY_TRAINING = AdapterTraining(epochs=150, batch=256, temperature=0.02)


@dataclass(frozen=True)
class BinaryCodeSpec:
    """What ``densekit adapt --kind binary`` makes: ``bits`` per code (None: the collection's
    learned bits, else its dimension), the contrastive loss's weight against similarity
    preservation, and how deep a new learned index rescores (0: not at all)."""

    bits: int | None = None
    contrastive: float = 1.0
    rescore: int = 2

    def __post_init__(self) -> None:
        if self.bits is not None and (self.bits < 8 or self.bits % 8):
            raise InputError(f"--bits {self.bits}: give a multiple of 8 (codes are packed bytes)")
        if self.contrastive < 0:
            raise InputError(f"--contrastive {self.contrastive}: give 0 or more")
        if self.rescore < 0:
            raise InputError(f"--rescore {self.rescore}: give 0 (no rescoring) or more")


@dataclass(frozen=True)
class BinaryCodeReport:
    queries: int
    pairs: int
    documents: int
    bits: int
    steps: int
    seconds: float
    loss_first_epoch: float
    loss_last_epoch: float
    training: dict


def train_binary_head(
    head: BinaryHead,
    queries: np.ndarray,
    documents: np.ndarray,
    training: AdapterTraining | None = None,
    pairs: np.ndarray | None = None,
    contrastive: float = 1.0,
) -> tuple[BinaryHead, BinaryCodeReport]:
    """``head`` trained on ``queries`` against ``documents`` (float vectors, the ones the head
    codes); ``pairs`` holds (query row, document row) for judged positives."""
    import torch

    training = training or AdapterTraining()
    if contrastive < 0:
        raise InputError(f"contrastive weight {contrastive}: give 0 or more")
    if len(queries) == 0:
        raise InputError("no training queries for the binary head")
    if head.dimension != documents.shape[1] or head.dimension != queries.shape[1]:
        raise InputError(
            f"the binary head codes {head.dimension}-dimensional vectors; the queries have "
            f"{queries.shape[1]} dimensions and the documents {documents.shape[1]}"
        )
    with torch.random.fork_rng():  # seeded, without touching the caller's RNG
        torch.manual_seed(training.seed)
        return _train(head, queries, documents, training, pairs, contrastive)


def _train(
    head: BinaryHead,
    queries: np.ndarray,
    documents: np.ndarray,
    training: AdapterTraining,
    pairs: np.ndarray | None,
    contrastive: float,
) -> tuple[BinaryHead, BinaryCodeReport]:
    import torch

    started = time.perf_counter()
    generator = torch.Generator().manual_seed(training.seed)
    query_vectors = torch.from_numpy(np.ascontiguousarray(queries, dtype=np.float32))
    document_vectors = torch.from_numpy(np.ascontiguousarray(documents, dtype=np.float32))
    top = _teacher_top(query_vectors, document_vectors, TEACHER_TOP)
    positives = _positives_of(pairs, len(queries)) if contrastive > 0 else None
    projection = torch.nn.Parameter(torch.from_numpy(head.projection.copy()))
    offset = torch.nn.Parameter(torch.from_numpy(head.offset.copy()))
    scale = torch.nn.Parameter(torch.tensor(INITIAL_SCALE))
    optimiser = torch.optim.Adam([projection, offset, scale], lr=training.learning_rate)
    per_epoch = math.ceil(len(queries) / training.batch)
    total = training.epochs * per_epoch
    epoch_losses: list[float] = []
    step = 0
    for _ in range(training.epochs):
        losses = []
        for batch in torch.randperm(len(queries), generator=generator).split(training.batch):
            sharpness = 1.0 + (SHARPEST - 1.0) * step / max(total - 1, 1)
            needed = top[batch].reshape(-1)
            if positives is not None:
                judged = [positives[q] for q in batch.tolist()]
                needed = torch.cat([needed, torch.from_numpy(np.concatenate(judged))])
            columns = _step_documents(needed, len(documents), training.negatives, generator)
            anchors, candidates = query_vectors[batch], document_vectors[columns]
            teacher = torch.softmax(anchors @ candidates.T / training.temperature, dim=1)
            codes_q = torch.tanh(sharpness * (anchors @ projection + offset))
            codes_d = torch.tanh(sharpness * (candidates @ projection + offset))
            logits = torch.log_softmax(scale * codes_q @ codes_d.T / head.bits, dim=1)
            loss = -(teacher * logits).sum(dim=1).mean()
            if positives is not None:
                loss = loss + contrastive * _positive_loss(logits, batch, columns, positives)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
            step += 1
        epoch_losses.append(float(np.mean(losses)))
    trained = BinaryHead(
        projection.detach().numpy().astype(np.float32),
        offset.detach().numpy().astype(np.float32),
    )
    report = BinaryCodeReport(
        queries=len(queries),
        pairs=0 if pairs is None else len(pairs),
        documents=len(documents),
        bits=head.bits,
        steps=step,
        seconds=round(time.perf_counter() - started, 2),
        loss_first_epoch=round(epoch_losses[0], 4),
        loss_last_epoch=round(epoch_losses[-1], 4),
        training={**asdict(training), "contrastive": contrastive},
    )
    return trained, report


def _teacher_top(queries, documents, k: int):  # torch tensors
    """Each query's ``k`` best documents by the float vectors, computed in blocks."""
    import torch

    k = min(k, len(documents))
    best = []
    for start in range(0, len(queries), _SCORE_BLOCK):
        block = queries[start : start + _SCORE_BLOCK] @ documents.T
        best.append(block.topk(k, dim=1).indices)
    return torch.cat(best)


def _step_documents(needed, count: int, negatives: int | None, generator):
    """The document rows a step scores: all, or ``negatives`` sampled plus the ``needed`` ones
    (the batch's float top matches and judged positives), sorted, without repeats."""
    import torch

    if negatives is None or negatives >= count:
        return torch.arange(count)
    sampled = torch.randint(count, (negatives,), generator=generator)
    return torch.unique(torch.cat([sampled, needed.long()]))


def _positives_of(pairs: np.ndarray | None, queries: int) -> list[np.ndarray] | None:
    if pairs is None or len(pairs) == 0:
        return None
    pairs = np.asarray(pairs, dtype=np.int64)
    return [pairs[pairs[:, 0] == q, 1] for q in range(queries)]


def _positive_loss(logits, batch, columns, positives: list[np.ndarray]):
    """Mean negative log-probability of the batch's judged positives among the step's
    documents (positives outside them do not count)."""
    import torch

    where = {int(row): position for position, row in enumerate(columns.tolist())}
    rows, cols = [], []
    for position, query in enumerate(batch.tolist()):
        for document in positives[query]:
            if int(document) in where:
                rows.append(position)
                cols.append(where[int(document)])
    if not rows:
        return logits.new_zeros(())
    return -logits[torch.tensor(rows), torch.tensor(cols)].mean()
