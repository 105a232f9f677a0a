"""One error family for everything densekit refuses to do.

Every message says what is wrong, where (file:line, id, field) and what to do about it;
the CLI prints it without a traceback and exits 2.
"""

from __future__ import annotations


class DensekitError(Exception):
    """Base of every error densekit raises on purpose."""


class InputError(DensekitError):
    """Bad user input: a malformed file, a missing field, a duplicate id."""


class CollectionError(DensekitError):
    """A collection directory that is missing, partial, corrupt or already exists."""


class ModelMismatchError(DensekitError):
    """Queries encoded by another model than the one a collection was built with."""


class MissingDependencyError(DensekitError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str, *, command: str | None = None) -> None:
        how = command or f"pip install 'densekit[{extra}]'"
        super().__init__(f"{package} is not installed; install it with: {how}")
