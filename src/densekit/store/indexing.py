"""A generation's indexes, built from its documents and vectors; shared by builds, changes and
compaction."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from densekit.corpus.document import Document
from densekit.encode.sparse import SparseTextEncoder
from densekit.files.durability import writing
from densekit.index.ann import AnnIndex
from densekit.index.bm25_statistics import CorpusStatistics
from densekit.index.lexical import LexicalIndex
from densekit.index.sparse import SparseIndex
from densekit.index.spec import IndexSpec
from densekit.index.vectors import PassageGroups, ShardedVectors
from densekit.store import layout
from densekit.store.documents import DocumentStore
from densekit.store.manifest import LexicalInfo, SparseInfo

if TYPE_CHECKING:
    from scipy.sparse import csr_matrix


def index_lexical(
    store: DocumentStore,
    root: Path,
    generation: str,
    settings: LexicalInfo,
    *,
    progress: bool,
    statistics: CorpusStatistics | None = None,
) -> LexicalInfo:
    """BM25 over the live documents of ``store`` with ``settings``, saved in ``root``.

    Its statistics (IDF, average length) are those of the live documents, so scores after a
    change equal those of a fresh build of the same documents; or, for a shard, the given
    ``statistics`` of the whole collection.
    """
    rows = store.live_rows()
    contiguous = len(rows) == 0 or int(rows[-1]) == len(rows) - 1
    index = LexicalIndex.build(
        [document.content for document in store.iter_documents()],
        k1=settings.k1,
        b=settings.b,
        stemmer=settings.stemmer,
        stopwords=settings.stopwords,
        terms=settings.terms,
        progress=progress,
        rows=None if contiguous else rows,
        statistics=statistics,
    )
    with writing(root / layout.LEXICAL_DIR, discard=True):
        index.save(root / layout.LEXICAL_DIR)
    return dataclasses.replace(settings, directory=f"{generation}/{layout.LEXICAL_DIR}")


def build_ann_index(
    spec: IndexSpec,
    vectors: ShardedVectors,
    offsets: np.ndarray | None,
    root: Path,
    generation: str,
) -> dict[str, Any]:
    """Build (train and fill) the approximate index of ``spec`` and save it in ``root``."""
    index = AnnIndex.build(spec, vectors, PassageGroups(vectors.rows, offsets))
    with writing(root):
        record = index.save(root)
    return {**record, "file": f"{generation}/{record['file']}"}


def index_sparse(
    documents: Sequence[Document],
    root: Path,
    generation: str,
    encoder: SparseTextEncoder,
    *,
    earlier: csr_matrix | None = None,
    progress: bool,
) -> SparseInfo:
    """Encode ``documents`` with the sparse model and save the inverted index in ``root``,
    after the document vectors of ``earlier`` rows when a change extends an index."""
    from scipy.sparse import vstack

    vectors = encoder.encode_documents([d.content for d in documents], progress=progress)
    if earlier is not None:
        vectors = vstack([earlier, vectors], format="csr")
    with writing(root / layout.SPARSE_DIR, discard=True):
        SparseIndex.from_documents(vectors).save(root / layout.SPARSE_DIR)
    return SparseInfo(
        directory=f"{generation}/{layout.SPARSE_DIR}",
        name=encoder.name,
        location=encoder.spec.location,
        fingerprint=encoder.fingerprint,
        max_tokens=encoder.max_tokens,
    )
