"""Candidate indexes over compact or approximate codes, built by FAISS from an index spec.

A :class:`CodeIndex` returns passage rows and approximate scores; :mod:`densekit.index.ann`
rescores and groups them into documents.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from pathlib import Path

import numpy as np

from densekit.errors import InputError
from densekit.index.faiss_loader import faiss_module
from densekit.index.learned_binary import BinaryHead, itq_head, lsh_index
from densekit.index.spec import QUERY_OPTIONS, IndexSpec
from densekit.index.vectors import ShardedVectors

DEFAULT_TRAIN_SAMPLE = 100_000
_ADD_BLOCK = 65_536


class CodeIndex:
    """One FAISS index (float codes or binary codes) over the first ``dim`` dimensions."""

    def __init__(self, spec: IndexSpec, index: object, dimension: int) -> None:
        self.spec = spec
        self.index = index
        self.dimension = dimension  # of the stored vectors; the codes may use fewer
        self._lock = threading.Lock()  # query-time parameters are set on the shared index
        self._applied: dict[str, int] = {}
        # What a search that names no setting gets: the index's own, as built or loaded (a
        # widened filtered search must not leave its settings behind).
        self._defaults = {} if self.is_binary else _query_settings(index)

    @property
    def is_binary(self) -> bool:
        """Whether the codes are bits searched by Hamming distance (sign or learned bits)."""
        return self.spec.base == "binary"

    @property
    def code_dimension(self) -> int:
        if self.spec.is_learned_binary:
            return int(self.index.nbits)  # type: ignore[attr-defined]
        return self.spec.dim or self.dimension

    @property
    def rows(self) -> int:
        return int(self.index.ntotal)  # type: ignore[attr-defined]

    @classmethod
    def build(cls, spec: IndexSpec, vectors: ShardedVectors) -> CodeIndex:
        faiss = faiss_module()
        dim = spec.dim or vectors.dimension
        if dim > vectors.dimension:
            raise InputError(
                f"index spec {spec}: dim{dim} exceeds the model's {vectors.dimension} dimensions"
            )
        if spec.is_learned_binary:
            index = None  # its head is learned from the vectors, below
        elif spec.base == "binary":
            index = faiss.IndexBinaryFlat(_binary_bits(dim))
        elif spec.base == "int8":
            index = faiss.IndexScalarQuantizer(
                dim, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
            )
        else:
            index = factory_index(spec, dim)
        built = cls(spec, index, vectors.dimension)
        if index is None:
            built.index = lsh_index(built._learned_head(vectors, dim))
        built._train(vectors)
        if "efConstruction" in spec.options:
            faiss.ParameterSpace().set_index_parameter(
                index, "efConstruction", spec.options["efConstruction"]
            )
        built.add(vectors)
        return built

    def add(self, vectors: ShardedVectors) -> None:
        """Encode and append ``vectors``; their rows follow the ones already indexed."""
        for block in vectors.blocks(_ADD_BLOCK):
            self.index.add(self.encode(block))  # type: ignore[attr-defined]

    def _learned_head(self, vectors: ShardedVectors, dim: int) -> BinaryHead:
        """ITQ on a sample of the collection's vectors (:mod:`densekit.index.learned_binary`)."""
        bits = learned_bits(self.spec, dim, vectors.rows)
        count = max(bits, self.spec.options.get("train", DEFAULT_TRAIN_SAMPLE))
        return itq_head(self.encode(vectors.sample(count)), bits)

    def _train(self, vectors: ShardedVectors) -> None:
        if self.index.is_trained:  # type: ignore[attr-defined]
            return
        needed = training_minimum(self.spec)
        if vectors.rows < needed:
            raise InputError(
                f"index spec {self.spec} needs at least {needed} vectors to train, the "
                f"collection has {vectors.rows}; use fewer IVF lists or PQ bits, or flat/HNSW"
            )
        count = max(needed, self.spec.options.get("train", DEFAULT_TRAIN_SAMPLE))
        self.index.train(self.encode(vectors.sample(count)))  # type: ignore[attr-defined]

    def encode(self, block: np.ndarray) -> np.ndarray:
        """What the index stores for float vectors: truncated, renormalised, maybe binarised."""
        block = truncated(block, self.spec.dim)
        if self.spec.is_sign_binary:  # learned bits: the LSH index applies its head itself
            bits = _binary_bits(block.shape[1])
            padded = np.zeros((len(block), bits), dtype=bool)
            padded[:, : block.shape[1]] = block > 0
            return np.packbits(padded, axis=1)
        return np.ascontiguousarray(block)

    def search(
        self,
        queries: np.ndarray,
        n: int,
        params: dict[str, int] | None = None,
        allowed: RowFilter | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``n`` passage rows per query and their approximate scores (higher is better).

        With ``allowed``, FAISS skips every other row while it searches (see :attr:`can_filter`).
        """
        codes = self.encode(queries)
        n = max(1, min(n, self.rows))
        settings = {k: v for k, v in self.spec.options.items() if k in QUERY_OPTIONS}
        settings.update(params or {})
        with self._lock:
            self.apply_settings(settings)
            if allowed is None:
                distances, labels = self.index.search(codes, n)  # type: ignore[attr-defined]
            else:
                filtered = _filtered_parameters(self.index, allowed.selector)
                if filtered is None:
                    raise InputError(f"index {self.spec} cannot filter rows while searching")
                distances, labels = self.index.search(codes, n, params=filtered)  # type: ignore[attr-defined]
        if self.is_binary:  # Hamming distance to an approximate cosine
            bits = self.code_dimension
            return labels, (1.0 - 2.0 * distances.astype(np.float32) / bits)
        return labels, distances.astype(np.float32, copy=False)

    @property
    def inverted_lists(self) -> int | None:
        """An IVF index's list count; None for other kinds."""
        if self.is_binary:
            return None
        try:
            ivf = faiss_module().extract_index_ivf(self.index)
        except RuntimeError:
            return None
        return int(ivf.nlist)

    @property
    def can_filter(self) -> bool:
        """Whether FAISS can skip rows during the search (all but flat PQ can)."""
        return _filtered_parameters(self.index, None) is not None

    def apply_settings(self, settings: dict[str, int]) -> None:
        """Set query-time parameters (efSearch, nprobe) on the index; those not given go back
        to the index's own."""
        settings = {**self._defaults, **settings}
        if not settings or self.is_binary or settings == self._applied:
            return
        faiss = faiss_module()
        space = faiss.ParameterSpace()
        for name, value in settings.items():
            try:
                space.set_index_parameter(self.index, name, value)
            except RuntimeError:
                raise InputError(f"index {self.spec} has no query-time setting {name!r}") from None
        self._applied = dict(settings)

    @property
    def resident_bytes(self) -> int:
        """Bytes the index occupies in memory (its serialised size: codes plus structure)."""
        faiss = faiss_module()
        if self.spec.is_sign_binary:
            return int(faiss.serialize_index_binary(self.index).nbytes)
        return int(faiss.serialize_index(self.index).nbytes)

    def save(self, path: Path) -> None:
        faiss = faiss_module()
        staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        write = faiss.write_index_binary if self.spec.is_sign_binary else faiss.write_index
        write(self.index, str(staging))
        os.replace(staging, path)

    @classmethod
    def load(cls, path: Path, spec: IndexSpec, dimension: int) -> CodeIndex:
        faiss = faiss_module()
        read = faiss.read_index_binary if spec.is_sign_binary else faiss.read_index
        return cls(spec, read(str(path)), dimension)


def learned_bits(spec: IndexSpec, dim: int, rows: int) -> int:
    """The bits a learned binary ``spec`` codes ``dim`` dimensions with (default: one per
    dimension), refused when they exceed the dimensions or the ``rows`` vectors to learn from."""
    bits = spec.options.get("bits", dim // 8 * 8)
    if bits > dim or bits < 8:
        raise InputError(
            f"index spec {spec}: {bits} learned bits from {dim} dimensions; give bits "
            f"between 8 and {dim // 8 * 8} (a multiple of 8)"
        )
    if rows < bits:
        raise InputError(
            f"index spec {spec} needs at least {bits} vectors to learn its codes, the "
            f"collection has {rows}; use fewer bits, or sign bits (binary)"
        )
    return bits


def truncated(block: np.ndarray, dim: int | None) -> np.ndarray:
    """``block``'s first ``dim`` dimensions, renormalised (Matryoshka truncation); all of them
    when ``dim`` is None."""
    block = np.asarray(block, dtype=np.float32)
    if dim is None:
        return block
    block = block[:, :dim]
    return block / np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)


class RowFilter:
    """The rows a search may return, as a FAISS bitmap selector over ``allowed`` (a boolean per
    row). Deleted rows stay in the index (HNSW keeps routing through them) but never come back."""

    def __init__(self, allowed: np.ndarray) -> None:
        faiss = faiss_module()
        self.bitmap = np.packbits(np.asarray(allowed, dtype=bool), bitorder="little")
        # FAISS reads the bitmap in place: this object keeps it alive.
        self.selector = faiss.IDSelectorBitmap(len(self.bitmap), faiss.swig_ptr(self.bitmap))


def _filtered_parameters(index: object, selector: object | None) -> object | None:
    """Search parameters that make ``index`` skip rows outside ``selector``, carrying the
    efSearch/nprobe already set on it; ``None`` for index types FAISS cannot filter."""
    faiss = faiss_module()
    if isinstance(index, faiss.IndexBinaryFlat):
        return faiss.SearchParameters(sel=selector)
    node = faiss.downcast_index(index)
    if isinstance(node, faiss.IndexPreTransform):
        inner = _filtered_parameters(node.index, selector)
        return None if inner is None else faiss.SearchParametersPreTransform(index_params=inner)
    if isinstance(node, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=node.hnsw.efSearch)
    if isinstance(node, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=node.nprobe)
    if isinstance(node, faiss.IndexFlat | faiss.IndexScalarQuantizer):
        return faiss.SearchParameters(sel=selector)
    return None


def _query_settings(index: object) -> dict[str, int]:
    """The efSearch and nprobe ``index`` searches with now (those it has)."""
    faiss = faiss_module()
    found = {}
    with contextlib.suppress(RuntimeError):  # not an IVF index
        found["nprobe"] = int(faiss.extract_index_ivf(index).nprobe)
    node = faiss.downcast_index(index)
    if isinstance(node, faiss.IndexPreTransform):
        node = faiss.downcast_index(node.index)
    if isinstance(node, faiss.IndexHNSW):
        found["efSearch"] = int(node.hnsw.efSearch)
    return found


def factory_index(spec: IndexSpec, dim: int) -> object:
    """The untrained FAISS index of a factory spec (``flat`` with ``dimN:`` is FAISS ``Flat``).

    What FAISS would reject with an opaque message gets a clear one: PQ sizes that do not divide
    the dimension, and factory strings FAISS does not know."""
    for name, m in re.findall(r"\b(O?PQ)(\d+)", spec.base):
        if int(m) == 0 or dim % int(m):
            divisors = [d for d in (4, 8, 12, 16, 24, 32, 48, 64, 96) if dim % d == 0]
            raise InputError(
                f"index spec {spec}: {name}{m} splits vectors into {m} sub-quantisers, which "
                f"must divide the {dim} dimensions; try one of {divisors}"
            )
    faiss = faiss_module()
    try:
        index = faiss.index_factory(
            dim, spec.base if spec.is_faiss_factory else "Flat", faiss.METRIC_INNER_PRODUCT
        )
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise InputError(
            f"index spec {spec}: FAISS cannot build {spec.base!r} ({reason}). "
            "See the FAISS index_factory documentation for the grammar"
        ) from None
    _skip_polysemous_training(index)
    return index


def training_minimum(spec: IndexSpec) -> int:
    """Vectors FAISS needs to train the spec: a point per IVF list, per PQ centroid."""
    needed = 1
    for lists in re.findall(r"\bIVF(\d+)", spec.base):
        needed = max(needed, int(lists))
    for bits in re.findall(r"\bPQ\d+(?:x(\d+))?", spec.base):
        needed = max(needed, 2 ** int(bits or 8))
    return needed


def _skip_polysemous_training(index: object) -> None:
    """The factory turns on polysemous training for PQ codes, which only serves Hamming
    pre-filtering densekit does not use, and takes most of the training time."""
    faiss = faiss_module()
    node = faiss.downcast_index(index)
    if isinstance(node, faiss.IndexPreTransform):
        node = faiss.downcast_index(node.index)
    if hasattr(node, "do_polysemous_training"):
        node.do_polysemous_training = False


def _binary_bits(dim: int) -> int:
    return (dim + 7) // 8 * 8
