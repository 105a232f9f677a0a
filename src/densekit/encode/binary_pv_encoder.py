"""A trained Binary PV model (``densekit train-bpv``) as an encoder: ``bpv:DIR[#output=...]``.

- ``output=codes`` (default): each text's code as a vector of +-1/sqrt(bits). Its signs are
  the code, so a ``binary`` index holds exactly the model's bits (Hamming search), and a flat
  index ranks as Hamming distance does.
- ``output=real``: the real-valued + binary variant's real vector (unit length), to rescore a
  shortlist that its codes made.

The spec's name holds the folder's absolute path, so a collection reopens the model from any
working directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from densekit.encode.binary_pv import MODEL_FILES, BinaryPVModel, word_spans, words
from densekit.encode.fingerprint import files_digest, settings_digest
from densekit.encode.model_spec import ModelSpec
from densekit.errors import InputError

BPV_PREFIX = "bpv:"
OUTPUTS = ("codes", "real")
MAX_TOKENS = 1_000_000  # the model reads whole documents


def bpv_spec(name: str) -> ModelSpec:
    """``bpv:DIR[#output=codes|real]`` as a spec naming the folder by its absolute path."""
    folder, _, fragment = name.removeprefix(BPV_PREFIX).partition("#")
    if not folder.strip():
        raise InputError(
            f"{name!r}: no model folder; write bpv:DIR (a model densekit train-bpv trained)"
        )
    output = _output(fragment, name)
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(
            f"{name!r}: no folder {str(path)!r}; train a model there first: "
            f"densekit train-bpv CORPUS --out {folder}"
        )
    suffix = "" if output == "codes" else f"#output={output}"
    return ModelSpec(
        name=f"{BPV_PREFIX}{path.resolve()}{suffix}",
        location=f"{path.resolve()}#output={output}",
        description=f"Binary PV model at {path.resolve()} ({output})",
        backend="bpv",
    )


def _output(fragment: str, where: str) -> str:
    output = "codes"
    for key, value in parse_qsl(fragment, keep_blank_values=True):
        if key != "output":
            raise InputError(f"{where}: unknown option {key!r}; the option is output=codes|real")
        output = value
    if output not in OUTPUTS:
        raise InputError(f"{where}: output must be one of {', '.join(OUTPUTS)}, not {output!r}")
    return output


class BinaryPVEncoder:
    """Texts to a Binary PV model's codes (or real vectors); see the module notes."""

    def __init__(self, spec: ModelSpec) -> None:
        folder, _, fragment = spec.location.partition("#")
        self.spec = spec
        self.directory = Path(folder)
        self.output = _output(fragment, spec.name)
        self.model = BinaryPVModel.load(self.directory)
        if self.output == "real" and not self.model.config.real_dim:
            raise InputError(
                f"{spec.name}: output=real needs a real-valued + binary model (densekit "
                "train-bpv --real-dim D); this one learned codes only"
            )

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dimension(self) -> int:
        config = self.model.config
        return config.real_dim if self.output == "real" else config.bits

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS

    @property
    def document_tokens(self) -> int:
        return MAX_TOKENS

    @cached_property
    def fingerprint(self) -> str:
        settings = {"backend": "bpv", "output": self.output, "normalize": self.spec.normalize}
        return settings_digest(files_digest(self.directory, MODEL_FILES), settings)

    def token_lengths(self, texts: Sequence[str]) -> list[int]:
        return [len(words(text)) for text in texts]

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        return word_spans(text)

    def encode_queries(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.encode_documents(texts)

    def encode_documents(
        self,
        texts: Sequence[str],
        *,
        progress: bool = False,
        token_lengths: Sequence[int] | None = None,
    ) -> np.ndarray:
        return self._vectors(self.model.infer(texts))

    def _vectors(self, parameters: np.ndarray) -> np.ndarray:
        if self.output == "real":
            vectors = parameters.astype(np.float32)
        else:
            vectors = np.where(self.model.code_bits(parameters), 1.0, -1.0).astype(np.float32)
        if self.spec.normalize:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return vectors
