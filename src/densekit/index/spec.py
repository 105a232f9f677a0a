"""Index specs: one short string names a dense index, for manifests, command lines and benchmarks.

Grammar (the one place it is defined and parsed)::

    spec    := [ "dim" INT ":" ] base [ "(" option { "," option } ")" ] [ "+rescore" [ "*" INT ] ]
    base    := "flat" | "binary" | "int8" | FAISS index_factory string
    option  := NAME "=" INT

- ``flat``: exact inner product over the collection's float shards (the default).
- ``binary``: one sign bit per dimension, Hamming search (FAISS binary flat index).
  ``binary(learned=1)``: learned binary codes instead: a projection to ``bits`` bits
  (default: the dimension) and a threshold per bit, trained on the collection's vectors
  (ITQ: principal directions rotated to lose least to rounding; ``densekit adapt --kind binary``
  trains them further on queries), held in a FAISS LSH index that codes queries at search time.
- ``int8``: one byte per dimension (FAISS 8-bit scalar quantiser), inner product.
- any FAISS factory string with inner product: ``HNSW32``, ``IVF256,Flat``, ``IVF256,PQ48``,
  ``OPQ48,IVF256,PQ48``, ``PQ48``, ``Flat`` ...
- options: ``efConstruction`` (HNSW build), ``efSearch`` (HNSW query), ``nprobe`` (IVF query),
  ``train`` (vectors sampled to train IVF/PQ or learned codes), ``learned`` and ``bits``
  (learned binary codes); query-time ones can be overridden per search.
- ``dimN:`` indexes the first N dimensions (Matryoshka truncation, renormalised).
- ``+rescore*M``: fetch k x M candidates from the codes, rescore them with the full float
  vectors read from the memory-mapped shards. A compressed base with rescoring is bi-granular:
  only the codes stay in RAM.

Examples: ``HNSW32(efSearch=128)``, ``binary+rescore*4``, ``IVF256,PQ48(nprobe=16)+rescore*10``,
``dim128:HNSW32+rescore*4``, ``binary(learned=1,bits=128)+rescore*2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from densekit.errors import InputError

GRAMMAR = (
    'spec := ["dim" N ":"] base ["(" name=int, ... ")"] ["+rescore" ["*" M]]; '
    "base := flat | binary | int8 | a FAISS factory string (HNSW32, IVF256,Flat, IVF256,PQ48, "
    "OPQ48,IVF256,PQ48, PQ48 ...); options: efConstruction, efSearch, nprobe, train, and for "
    "binary learned=1 with bits=N (a multiple of 8). "
    "Examples: HNSW32(efSearch=128), binary+rescore*4, dim128:IVF256,PQ48+rescore*10, "
    "binary(learned=1,bits=128)+rescore*2"
)
DENSEKIT_BASES = ("flat", "binary", "int8")
BUILD_OPTIONS = ("efConstruction", "train", "learned", "bits")
BINARY_OPTIONS = ("learned", "bits")
QUERY_OPTIONS = ("efSearch", "nprobe")
DEFAULT_RESCORE_MULTIPLIER = 4

_SPEC = re.compile(
    r"""^(?:dim(?P<dim>\d+):)?
        (?P<base>[A-Za-z0-9_,]+?)
        (?:\((?P<options>[^()]*)\))?
        (?P<rescore>\+rescore(?:\*(?P<multiplier>\d+))?)?$""",
    re.VERBOSE,
)
_FAISS_BASE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:,[A-Za-z][A-Za-z0-9_]*)*$")
_OPTION = re.compile(r"^(?P<name>[A-Za-z]+)=(?P<value>\d+)$")


@dataclass(frozen=True)
class IndexSpec:
    base: str = "flat"
    dim: int | None = None
    options: dict[str, int] = field(default_factory=dict)
    rescore: int | None = None  # candidate multiplier, None without rescoring

    @property
    def is_faiss_factory(self) -> bool:
        return self.base not in DENSEKIT_BASES

    @property
    def is_learned_binary(self) -> bool:
        return self.base == "binary" and self.options.get("learned") == 1

    @property
    def is_sign_binary(self) -> bool:
        """Sign bits, held in a FAISS binary index (learned bits live in a float-input one)."""
        return self.base == "binary" and not self.is_learned_binary

    @property
    def is_exact(self) -> bool:
        return self.base == "flat" and self.dim is None

    def __str__(self) -> str:
        text = f"dim{self.dim}:" if self.dim is not None else ""
        text += self.base
        if self.options:
            text += "(" + ",".join(f"{k}={v}" for k, v in self.options.items()) + ")"
        if self.rescore is not None:
            text += f"+rescore*{self.rescore}"
        return text


def parse_spec(text: str) -> IndexSpec:
    """Parse an index spec; a malformed one is an :class:`InputError` showing the grammar."""
    cleaned = text.strip()
    match = _SPEC.match(cleaned)
    if match is None or not _FAISS_BASE.match(match["base"]):
        raise _invalid(text, "it does not follow the grammar")
    base = match["base"]
    if base.lower() in DENSEKIT_BASES:
        base = base.lower()
    options = _parse_options(text, match["options"])
    dim = int(match["dim"]) if match["dim"] else None
    if dim == 0:
        raise _invalid(text, "dim must be at least 1")
    rescore = None
    if match["rescore"]:
        rescore = int(match["multiplier"]) if match["multiplier"] else DEFAULT_RESCORE_MULTIPLIER
        if rescore < 1:
            raise _invalid(text, "the rescore multiplier must be at least 1")
    if base == "flat" and rescore is not None and dim is None:
        raise _invalid(text, "flat is exact already; rescoring it changes nothing")
    _check_binary_options(text, base, options)
    return IndexSpec(base=base, dim=dim, options=options, rescore=rescore)


def _check_binary_options(text: str, base: str, options: dict[str, int]) -> None:
    given = [name for name in BINARY_OPTIONS if name in options]
    if given and base != "binary":
        raise _invalid(text, f"{' and '.join(given)} apply to binary codes only")
    if options.get("learned", 1) not in (0, 1):
        raise _invalid(text, "learned is 1 (learned codes) or 0 (sign bits)")
    if "bits" in options and options.get("learned") != 1:
        raise _invalid(
            text,
            "bits sets the size of learned codes (learned=1); sign bits of the first N "
            "dimensions are dimN:binary",
        )
    bits = options.get("bits")
    if bits is not None and (bits < 8 or bits % 8):
        raise _invalid(text, f"bits={bits}: give a multiple of 8 (codes are packed in bytes)")


def _parse_options(text: str, raw: str | None) -> dict[str, int]:
    options: dict[str, int] = {}
    if raw is None:
        return options
    for item in filter(None, (part.strip() for part in raw.split(","))):
        match = _OPTION.match(item)
        if match is None:
            raise _invalid(text, f"option {item!r} is not name=integer")
        name = match["name"]
        if name not in BUILD_OPTIONS + QUERY_OPTIONS:
            known = ", ".join(BUILD_OPTIONS + QUERY_OPTIONS)
            raise _invalid(text, f"unknown option {name!r} (known: {known})")
        options[name] = int(match["value"])
    return options


def _invalid(text: str, why: str) -> InputError:
    return InputError(f"invalid index spec {text!r}: {why}. Grammar: {GRAMMAR}")
