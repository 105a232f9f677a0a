"""Indexes over a collection's vectors and text."""

from densekit.index.flat import FlatIndex, top_k
from densekit.index.lexical import LexicalIndex

__all__ = ["FlatIndex", "LexicalIndex", "top_k"]
