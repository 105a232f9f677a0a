"""Documents and the readers that stream them from files."""

from densekit.corpus.chunking import ChunkConfig, chunk_text
from densekit.corpus.document import Document
from densekit.corpus.readers import CorpusReader, FieldNames, ReadStats, read_corpus

__all__ = [
    "ChunkConfig",
    "CorpusReader",
    "Document",
    "FieldNames",
    "ReadStats",
    "chunk_text",
    "read_corpus",
]
