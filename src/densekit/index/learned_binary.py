"""Learned binary codes: a projection of float vectors to ``bits`` dimensions and a threshold
per bit, a vector's code being the bits where its projection passes the threshold.

Sign bits (``binary``) threshold each float dimension at zero, so every bit is one of the
model's dimensions, however unevenly the collection spreads over them. A learned head first
turns the vectors to the directions the collection varies along and rotates them so that
rounding to bits loses least (ITQ: Gong & Lazebnik, "Iterative Quantization", 2011); training
on queries (:mod:`densekit.adapt.binary_codes`) goes on from there.

The head lives inside a FAISS ``IndexLSH`` (its rotation matrix and thresholds), which codes
float queries at search time and is saved, loaded and extended like any other FAISS index.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from densekit.errors import InputError
from densekit.index.faiss_loader import faiss_module

ITQ_ITERATIONS = 50


@dataclass(frozen=True)
class BinaryHead:
    """Codes are ``vectors @ projection + offset >= 0`` (as FAISS sets bits), one bit per
    column of ``projection``."""

    projection: np.ndarray  # (dimension, bits), float32
    offset: np.ndarray  # (bits,), float32

    def __post_init__(self) -> None:
        projection = np.ascontiguousarray(self.projection, dtype=np.float32)
        offset = np.ascontiguousarray(self.offset, dtype=np.float32).reshape(-1)
        if projection.ndim != 2 or offset.shape != (projection.shape[1],):
            raise InputError(
                f"a binary head needs a (dimension, bits) projection and one offset per bit; "
                f"got {projection.shape} and {offset.shape}"
            )
        if projection.shape[1] < 8 or projection.shape[1] % 8:
            raise InputError(
                f"a binary head of {projection.shape[1]} bits: give a multiple of 8 (codes are "
                "packed in bytes)"
            )
        object.__setattr__(self, "projection", projection)
        object.__setattr__(self, "offset", offset)

    @property
    def bits(self) -> int:
        return int(self.projection.shape[1])

    @property
    def dimension(self) -> int:
        return int(self.projection.shape[0])

    def signs(self, vectors: np.ndarray) -> np.ndarray:
        """Each vector's code as +1/-1 per bit (float32): inner products of these are
        ``bits - 2 x Hamming distance``."""
        projected = np.asarray(vectors, dtype=np.float32) @ self.projection + self.offset
        return np.where(projected >= 0, 1.0, -1.0).astype(np.float32)


def itq_head(
    sample: np.ndarray, bits: int, iterations: int = ITQ_ITERATIONS, seed: int = 0
) -> BinaryHead:
    """ITQ on ``sample``: the ``bits`` principal directions of the centred vectors, turned by
    the rotation that brings them closest to their own signs."""
    sample = np.asarray(sample, dtype=np.float64)
    if bits > min(sample.shape):
        raise InputError(
            f"{bits} learned bits need at least {bits} vectors of at least {bits} dimensions; "
            f"there are {sample.shape[0]} of {sample.shape[1]}: use fewer bits, or sign bits"
        )
    mean = sample.mean(axis=0)
    centred = sample - mean
    directions = np.linalg.svd(centred, full_matrices=False)[2][:bits].T  # (dimension, bits)
    projected = centred @ directions
    rng = np.random.default_rng(seed)
    rotation = np.linalg.qr(rng.normal(size=(bits, bits)))[0]
    for _ in range(iterations):
        # Orthogonal Procrustes: the rotation that best maps the projections onto their codes.
        codes = np.where(projected @ rotation >= 0, 1.0, -1.0)
        left, _, right = np.linalg.svd(projected.T @ codes)
        rotation = left @ right
    projection = directions @ rotation
    return BinaryHead(projection.astype(np.float32), (-mean @ projection).astype(np.float32))


def lsh_index(head: BinaryHead) -> object:
    """A trained, empty FAISS ``IndexLSH`` that codes vectors with ``head``."""
    faiss = faiss_module()
    index = faiss.IndexLSH(head.dimension, head.bits, True, True)
    set_head(index, head)
    return index


def set_head(index: object, head: BinaryHead) -> None:
    """Make ``index`` (an IndexLSH) code with ``head``; it must hold no codes yet."""
    faiss = faiss_module()
    rotation = index.rrot  # type: ignore[attr-defined]
    # FAISS computes A x (A row-major, bits x dimension), then subtracts the thresholds.
    faiss.copy_array_to_vector(np.ascontiguousarray(head.projection.T).ravel(), rotation.A)
    rotation.is_trained = True
    faiss.copy_array_to_vector(np.ascontiguousarray(-head.offset), index.thresholds)  # type: ignore[attr-defined]
    index.is_trained = True  # type: ignore[attr-defined]


def head_of(index: object) -> BinaryHead:
    """The head an IndexLSH codes with."""
    faiss = faiss_module()
    bits, dimension = index.nbits, index.d  # type: ignore[attr-defined]
    matrix = faiss.vector_to_array(index.rrot.A).reshape(bits, dimension)  # type: ignore[attr-defined]
    thresholds = faiss.vector_to_array(index.thresholds)  # type: ignore[attr-defined]
    return BinaryHead(matrix.T.astype(np.float32), (-thresholds).astype(np.float32))
