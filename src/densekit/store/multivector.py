"""A generation's token vectors for multi-vector search: encoded at build time, extended by
changes, compacted with the collection; and the late-interaction model that reads queries."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from densekit.corpus.document import Document
from densekit.errors import CollectionError, InputError, ModelMismatchError
from densekit.files.durability import writing
from densekit.index.late_interaction import (
    TOKEN_INDEX_FILE,
    MultiVectorIndex,
    TokenVectors,
    default_token_index,
    extend_token_index,
    quantise,
)
from densekit.store import layout
from densekit.store.manifest import Manifest, MultiVectorInfo
from densekit.store.row_files import corrupt

if TYPE_CHECKING:
    from densekit.encode.late_interaction import LateInteractionEncoder

# Documents encoded between quantisations: float token vectors of a whole corpus at once
# would be four times the int8 codes.
_ENCODE_CHUNK = 512


def load_multivector_encoder(name: str) -> LateInteractionEncoder:
    """A late-interaction model by registry name (``minilm``: its projection untrained), folder
    (kept as an absolute path, so the collection opens from anywhere) or hub name."""
    from densekit.encode.late_interaction import LateInteractionEncoder
    from densekit.encode.registry import resolve_model

    return LateInteractionEncoder(resolve_model(name).location, name=name)


def multivector_model(info: MultiVectorInfo) -> str:
    """What to load a collection's late-interaction model by: a registry name is found again
    where this installation keeps it; anything else where the build found it."""
    from densekit.encode.registry import REGISTRY

    return info.name if info.name in REGISTRY else info.location


def encode_token_vectors(
    encoder: LateInteractionEncoder, documents: Sequence[Document], *, progress: bool
) -> TokenVectors:
    """Every document's token vectors, quantised a chunk at a time."""
    from tqdm.auto import tqdm

    codes: list[np.ndarray] = []
    with tqdm(total=len(documents), desc="token vectors", unit="doc", disable=not progress) as bar:
        for start in range(0, len(documents), _ENCODE_CHUNK):
            chunk = documents[start : start + _ENCODE_CHUNK]
            codes += map(quantise, encoder.encode_documents([d.content for d in chunk]))
            bar.update(len(chunk))
    return TokenVectors.from_codes(codes, encoder.dimension)


def index_multivector(
    documents: Sequence[Document],
    root: Path,
    generation: str,
    encoder: LateInteractionEncoder,
    *,
    progress: bool,
) -> MultiVectorInfo:
    """Encode ``documents``' token vectors and save them with a new token index in ``root``."""
    tokens = encode_token_vectors(encoder, documents, progress=progress)
    spec = default_token_index(len(tokens.codes))
    folder = root / layout.MULTIVECTOR_DIR
    with writing(folder, discard=True):
        folder.mkdir(parents=True, exist_ok=True)
        MultiVectorIndex(tokens, MultiVectorIndex.build_token_index(tokens, spec)).save(folder)
    return _info(generation, encoder.name, encoder.location, encoder.fingerprint, tokens, spec)


def extend_multivector(
    documents: Sequence[Document],
    root: Path,
    generation: str,
    encoder: LateInteractionEncoder,
    current: MultiVectorIndex,
    source: Path,
    info: MultiVectorInfo,
    *,
    progress: bool,
) -> MultiVectorInfo:
    """The ``current`` token vectors, then ``documents``', saved in ``root``; the token
    index saved at ``source`` extended with the new tokens (its clustering kept)."""
    added = encode_token_vectors(encoder, documents, progress=progress)
    tokens = current.tokens.appended(added)
    return _rewrite(tokens, added.codes, source, root, generation, info, refill=False)


def compact_multivector(
    current: MultiVectorIndex,
    source: Path,
    live: np.ndarray,
    root: Path,
    generation: str,
    info: MultiVectorInfo,
) -> MultiVectorInfo:
    """The ``live`` documents' token vectors in ``root``, the token index saved at ``source``
    refilled with them."""
    tokens = current.tokens.take(live)
    return _rewrite(tokens, tokens.codes, source, root, generation, info, refill=True)


def _rewrite(
    tokens: TokenVectors,
    codes: np.ndarray,
    source: Path,
    root: Path,
    generation: str,
    info: MultiVectorInfo,
    *,
    refill: bool,
) -> MultiVectorInfo:
    """``tokens`` saved in ``root`` beside a copy of the token index at ``source`` with
    ``codes`` added (``refill``: in place of its own)."""
    folder = root / layout.MULTIVECTOR_DIR
    with writing(folder, discard=True):
        folder.mkdir(parents=True, exist_ok=True)
        tokens.save(folder)
        extend_token_index(source, codes, folder, refill=refill)
    return _info(generation, info.name, info.location, info.fingerprint, tokens, info.token_index)


def open_token_vectors(
    directory: Path, manifest: Manifest, deleted: np.ndarray | None
) -> MultiVectorIndex | None:
    """The token vectors and token index the manifest names (None when it names none)."""
    info = manifest.multivector
    if info is None:
        return None
    try:
        index = MultiVectorIndex.load(directory / info.directory, deleted)
    except (InputError, ValueError, RuntimeError) as exc:  # FAISS raises RuntimeError
        raise corrupt(directory, f"its token vectors cannot be read ({exc})") from None
    if index.tokens.documents != manifest.document_rows:
        raise corrupt(
            directory,
            f"token vectors for {index.tokens.documents} documents, the manifest says "
            f"{manifest.document_rows}",
        )
    return index


def without_token_vectors(directory: Path) -> CollectionError:
    return CollectionError(
        f"{directory}: built without token vectors, so it cannot be searched multi-vector; "
        "rebuild with --multivector MODEL (a model from densekit train --loss colbert, or a "
        "ColBERT checkpoint)"
    )


def token_encoder_of(directory: Path, manifest: Manifest) -> LateInteractionEncoder:
    """The collection's late-interaction model, refused unless it is the one its token vectors
    were made with."""
    info = manifest.multivector
    if info is None:
        raise without_token_vectors(directory)
    return check_multivector_encoder(
        load_multivector_encoder(multivector_model(info)), info, directory
    )


def check_multivector_encoder(
    encoder: LateInteractionEncoder, info: MultiVectorInfo, directory: Path
) -> LateInteractionEncoder:
    if encoder.fingerprint != info.fingerprint:
        raise ModelMismatchError(
            f"{directory}: the late-interaction model at {info.location} is not the one the "
            f"collection's token vectors were made with (fingerprint "
            f"{encoder.fingerprint[:12]} vs {info.fingerprint[:12]}); rebuild the collection"
        )
    return encoder


def token_index_file(directory: Path, info: MultiVectorInfo) -> Path:
    return directory / info.directory / TOKEN_INDEX_FILE


def _info(
    generation: str,
    name: str,
    location: str,
    fingerprint: str,
    tokens: TokenVectors,
    spec: str,
) -> MultiVectorInfo:
    return MultiVectorInfo(
        directory=f"{generation}/{layout.MULTIVECTOR_DIR}",
        name=name,
        location=location,
        fingerprint=fingerprint,
        dimension=tokens.dimension,
        tokens=len(tokens.codes),
        token_index=spec,
    )
