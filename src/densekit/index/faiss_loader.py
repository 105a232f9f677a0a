"""FAISS, imported on first use, with an error naming the package when it is missing."""

from __future__ import annotations

from densekit.errors import MissingDependencyError


def faiss_module():  # faiss has no type stubs
    try:
        import faiss
    except ImportError:
        raise MissingDependencyError("faiss", "faiss-cpu") from None
    return faiss
