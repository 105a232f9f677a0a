"""Residual adapters: small learned maps that fit frozen (or black-box) embeddings to a task.

Tr(e) = e + ΔW(e), with ΔW either low rank (e → B A e, A: d→h, B: h→d) or a key–value
memory of h slots (e → softmax(K e / τ)ᵀ V, unit-norm keys, τ = 0.1), as in Adapted Dense
Retrieval and "Augmented Embeddings for Custom Retrievals". The second factor (B, or V) starts
at zero, so an untrained adapter is the identity and training moves away from the frozen model
only as far as the data asks. An adapter maps queries only, or both sides with one map, or
each side with its own map (for corpora unlike their queries).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np

from densekit.errors import InputError

AdapterForm = Literal["low-rank", "key-value"]
AdapterSides = Literal["query", "both", "separate"]
FORMS: tuple[AdapterForm, ...] = ("low-rank", "key-value")
SIDES: tuple[AdapterSides, ...] = ("query", "both", "separate")
KEY_TEMPERATURE = 0.1


@dataclass(frozen=True)
class AdapterSpec:
    """The shape of an adapter: its form, its rank (or slots) h, and which sides it maps."""

    form: AdapterForm = "low-rank"
    rank: int = 64
    sides: AdapterSides = "query"

    def __post_init__(self) -> None:
        if self.form not in FORMS:
            raise InputError(f"adapter form must be one of {', '.join(FORMS)}, got {self.form!r}")
        if self.sides not in SIDES:
            raise InputError(f"adapter sides must be one of {', '.join(SIDES)}, got {self.sides!r}")
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise InputError(f"adapter rank must be a positive integer, got {self.rank!r}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def residual_map(form: AdapterForm, dimension: int, rank: int) -> Any:
    """One map e ↦ e + ΔW(e) as a torch module, the identity until trained."""
    import torch

    class LowRank(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.down = torch.nn.Linear(dimension, rank, bias=False)
            self.up = torch.nn.Linear(rank, dimension, bias=False)
            torch.nn.init.normal_(self.down.weight, std=1.0 / math.sqrt(dimension))
            torch.nn.init.zeros_(self.up.weight)

        def forward(self, e: torch.Tensor) -> torch.Tensor:
            return e + self.up(self.down(e))

    class KeyValue(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.keys = torch.nn.Parameter(torch.randn(rank, dimension))
            self.values = torch.nn.Parameter(torch.zeros(rank, dimension))

        def forward(self, e: torch.Tensor) -> torch.Tensor:
            # Cosines of unit vectors are small and bunched; /τ spreads them so a query
            # attends to the slots it is near rather than to all alike.
            keys = torch.nn.functional.normalize(self.keys, dim=-1)
            unit = torch.nn.functional.normalize(e, dim=-1)
            attention = torch.softmax(unit @ keys.T / KEY_TEMPERATURE, dim=-1)
            return e + attention @ self.values

    return LowRank() if form == "low-rank" else KeyValue()


class ResidualAdapter:
    """An adapter for vectors of one dimension: maps for the query side and the document side
    (the same map, a map of its own, or none), applied to unit vectors and renormalised."""

    def __init__(self, spec: AdapterSpec, dimension: int) -> None:
        import torch

        if dimension < 1:
            raise InputError(f"vector dimension must be positive, got {dimension}")
        self.spec = spec
        self.dimension = dimension
        self.query_map = residual_map(spec.form, dimension, spec.rank)
        self.document_map: torch.nn.Module | None = None
        if spec.sides == "both":
            self.document_map = self.query_map
        elif spec.sides == "separate":
            self.document_map = residual_map(spec.form, dimension, spec.rank)

    def modules(self) -> list[Any]:
        maps = [self.query_map]
        if self.document_map is not None and self.document_map is not self.query_map:
            maps.append(self.document_map)
        return maps

    def parameters(self) -> list[Any]:
        return [p for module in self.modules() for p in module.parameters()]

    def adapt_queries(self, vectors: np.ndarray) -> np.ndarray:
        return self._apply(self.query_map, vectors)

    def adapt_documents(self, vectors: np.ndarray) -> np.ndarray:
        if self.document_map is None:
            return _unit(self._checked(vectors))
        return self._apply(self.document_map, vectors)

    def _checked(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise InputError(
                f"the adapter maps {self.dimension}-dimensional vectors, got shape {vectors.shape}"
            )
        return vectors

    def _apply(self, module: Any, vectors: np.ndarray) -> np.ndarray:
        import torch

        vectors = self._checked(vectors)
        with torch.no_grad():
            mapped = module(torch.from_numpy(_unit(vectors)))
            return torch.nn.functional.normalize(mapped, dim=-1).numpy()

    def state(self) -> dict[str, Any]:
        """Tensors by name, for saving (``query.*``, ``document.*`` when the map is its own)."""
        tensors = {f"query.{k}": v for k, v in self.query_map.state_dict().items()}
        if self.spec.sides == "separate":
            assert self.document_map is not None
            tensors |= {f"document.{k}": v for k, v in self.document_map.state_dict().items()}
        return tensors

    def load_state(self, tensors: dict[str, Any]) -> None:
        self.query_map.load_state_dict(_prefixed(tensors, "query."))
        if self.spec.sides == "separate":
            assert self.document_map is not None
            self.document_map.load_state_dict(_prefixed(tensors, "document."))


def _prefixed(tensors: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}


def _unit(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)
