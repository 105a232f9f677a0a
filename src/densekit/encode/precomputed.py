"""Query vectors made elsewhere, standing in for a collection's model at search time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from densekit.encode.model_spec import ModelSpec
from densekit.errors import InputError
from densekit.files.vectors import VectorTable


class PrecomputedQueries:
    """An encoder that looks query vectors up instead of computing them.

    It carries the fingerprint of the collection it serves: the caller vouches that the
    vectors come from the model that made the collection's (their width is checked).
    """

    def __init__(
        self,
        vectors_by_text: Mapping[str, np.ndarray],
        *,
        name: str,
        fingerprint: str,
        dimension: int,
        source: str,
    ) -> None:
        self.spec = ModelSpec(name=name, location=source, backend="precomputed")
        self._vectors = dict(vectors_by_text)
        self._fingerprint = fingerprint
        self._dimension = dimension
        self._source = source

    @classmethod
    def for_queries(
        cls,
        table: VectorTable,
        queries: Mapping[str, str],
        *,
        name: str,
        fingerprint: str,
        dimension: int,
    ) -> PrecomputedQueries:
        """Vectors for ``queries`` (id → text), found by id in ``table``; every query needs
        one. Vectors are normalised to unit length, like the stored ones."""
        table.check_dimension(dimension, "the collection")
        rows = table.by_id()
        missing = [q for q in queries if q not in rows]
        if missing:
            raise InputError(
                f"{table.source}: no vector for {len(missing)} of {len(queries)} queries "
                f"(e.g. {', '.join(repr(q) for q in missing[:3])}); give one per query id"
            )
        vectors = table.vectors / np.linalg.norm(table.vectors, axis=1, keepdims=True)
        by_text = {text: vectors[rows[query]] for query, text in queries.items()}
        return cls(
            by_text, name=name, fingerprint=fingerprint, dimension=dimension, source=table.source
        )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def fingerprint(self) -> str:
        return self._fingerprint

    @property
    def max_tokens(self) -> int:
        return 0

    @property
    def document_tokens(self) -> int:
        return 0

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [0 for _ in texts]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return []

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        try:
            rows = [self._vectors[text] for text in texts]
        except KeyError as exc:
            raise InputError(
                f"{self._source}: no vector for query {str(exc.args[0])[:80]!r}"
            ) from None
        return np.stack(rows).astype(np.float32) if rows else np.empty((0, self._dimension))

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        raise InputError(
            "this collection's vectors were made elsewhere, so densekit cannot encode new "
            "documents for it; rebuild it with the new vectors (densekit index --vectors)"
        )
