"""What a manifest may say: the JSON type of every field, and where the paths it names may lead.

A manifest is read from disk, so it is input like any other: a wrong type (``"files": null``)
is reported by field, and a path that could leave the collection (``../decoy/00000.npy``, an
absolute path, a symlink pointing out) is refused before anything opens, prunes or deletes it.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Union, get_args, get_origin, get_type_hints

from densekit.errors import CollectionError
from densekit.files.ids import LONE_SURROGATE

# Names densekit gives the folders it creates; nothing else in a collection is ever pruned.
GENERATION_NAME = re.compile(r"gen-\d{8}T\d{6}-[0-9a-f]{8}")
ADAPTERS_DIR = "adapters"

RESTORE = "restore manifest.json from a backup or rebuild with densekit index ... --overwrite"


def check_text(data: Any, where: Path, field: str = "") -> None:
    """Refuse a lone UTF-16 surrogate anywhere in ``data``, naming the field: JSON's ``\\ud800``
    escape reads as one, and no file name, terminal or database can hold it."""
    if isinstance(data, dict):
        prefix = f"{field}." if field else ""
        for key, value in data.items():
            _refuse_surrogate(key, where, f"a key of field {field or 'the manifest'!r}")
            check_text(value, where, prefix + key)
    elif isinstance(data, list):
        for number, item in enumerate(data):
            check_text(item, where, f"{field}[{number}]")
    elif isinstance(data, str):
        _refuse_surrogate(data, where, f"field {field or 'the manifest'!r}")


def _refuse_surrogate(text: str, where: Path, what: str) -> None:
    found = LONE_SURROGATE.search(text)
    if found is not None:
        near = text[max(0, found.start() - 30) : found.end() + 10]
        raise CollectionError(
            f"{where}: corrupt manifest: {what} holds a lone UTF-16 surrogate (in {near!r}); "
            f"{RESTORE}"
        )


def check_types(cls: type, data: Any, where: Path) -> None:
    """Refuse ``data`` unless it has the JSON shape of dataclass ``cls``, naming the field."""
    _check_object(cls, data, "", where)


def _check_object(cls: type, data: Any, field: str, where: Path) -> None:
    if not isinstance(data, dict):
        _refuse(where, field or "the manifest", data, "an object")
    prefix = f"{field}." if field else ""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in fields:
            raise CollectionError(
                f"{where}: corrupt manifest: unknown field {prefix + str(key)!r} (written by a "
                f"newer densekit, or edited); {RESTORE}"
            )
    for name, spec in fields.items():
        if name not in data:
            required = spec.default is dataclasses.MISSING and (
                spec.default_factory is dataclasses.MISSING
            )
            if required:
                raise CollectionError(
                    f"{where}: corrupt manifest: field {prefix + name!r} is missing; {RESTORE}"
                )
            continue
        _check_value(data[name], hints[name], prefix + name, where)


def _check_value(value: Any, hint: Any, field: str, where: Path) -> None:
    origin = get_origin(hint)
    if hint is Any:
        return
    if origin in (Union, types.UnionType):
        options = [arg for arg in get_args(hint) if arg is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return
        hint, origin = options[0], get_origin(options[0])  # the manifest's unions are X | None
    if dataclasses.is_dataclass(hint):
        _check_object(hint, value, field, where)  # type: ignore[arg-type]
    elif origin is dict:
        if not isinstance(value, dict):
            _refuse(where, field, value, "an object")
        for key, item in value.items():
            _check_value(item, get_args(hint)[1], f"{field}[{key!r}]", where)
    elif origin is list:
        if not isinstance(value, list):
            _refuse(where, field, value, "a list")
        for number, item in enumerate(value):
            _check_value(item, get_args(hint)[0], f"{field}[{number}]", where)
    elif hint is bool:
        if not isinstance(value, bool):
            _refuse(where, field, value, "true or false")
    elif hint is int:
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            _refuse(where, field, value, "a whole number of at least 0")
    elif hint is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            _refuse(where, field, value, "a finite number")
    elif hint is str and not isinstance(value, str):
        _refuse(where, field, value, "a string")


def _refuse(where: Path, field: str, value: Any, expected: str) -> None:
    shown = "null" if value is None else f"{type(value).__name__} {str(value)[:40]!r}"
    raise CollectionError(
        f"{where}: corrupt manifest: field {field!r} is {shown}, expected {expected}; {RESTORE}"
    )


def named_paths(manifest: Any) -> Iterator[tuple[str, str]]:
    """Every (field, path) a manifest names inside its generations, for checking and opening."""
    for name in manifest.files:
        yield "files", name
    if manifest.tombstones is not None:
        yield "tombstones", manifest.tombstones
    dense = manifest.dense
    if dense is not None:
        for number, shard in enumerate(dense.shards):
            yield f"dense.shards[{number}]", shard
        for key in ("passage_offsets", "index_file"):
            if getattr(dense, key) is not None:
                yield f"dense.{key}", getattr(dense, key)
    for section in ("lexical", "sparse", "multivector"):
        part = getattr(manifest, section)
        if part is not None:
            yield f"{section}.directory", part.directory


def check_paths(manifest: Any, where: Path) -> None:
    """Refuse a manifest naming a path that is not a plain relative one inside a generation
    folder (or, for an adapter, inside ``adapters/``); no file is touched."""
    if not GENERATION_NAME.fullmatch(manifest.generation):
        _outside(where, "generation", manifest.generation, "a generation folder name")
    for field, path in named_paths(manifest):
        parts = _plain_parts(path)
        if parts is None or len(parts) < 2 or not GENERATION_NAME.fullmatch(parts[0]):
            _outside(where, field, path, "a path inside one of the collection's gen-… folders")
    adapter = manifest.adapter
    if adapter is not None:
        parts = _plain_parts(adapter.folder)
        if parts is None or len(parts) != 2 or parts[0] != ADAPTERS_DIR:
            _outside(where, "adapter.folder", adapter.folder, f"a folder inside {ADAPTERS_DIR}/")
        for name in adapter.files:
            if _plain_parts(name) is None:
                _outside(where, "adapter.files", name, "a path inside the adapter folder")


def _plain_parts(path: str) -> tuple[str, ...] | None:
    """The parts of a relative POSIX path without ``.``, ``..``, empty parts or NULs."""
    if not path or "\0" in path or path.startswith("/"):
        return None
    parts = tuple(path.split("/"))
    if any(part in ("", ".", "..") for part in parts):
        return None
    return PurePosixPath(path).parts


def _outside(where: Path, field: str, path: str, expected: str) -> None:
    raise CollectionError(
        f"{where}: manifest field {field!r} names {path!r}, which is not {expected}; refusing "
        f"a path that could lead outside the collection; {RESTORE}"
    )


def check_inside(directory: Path, relative: str, field: str) -> Path:
    """``directory / relative``, refused when symlinks make it lead out of ``directory``."""
    path = directory / relative
    if not path.resolve().is_relative_to(directory.resolve()):
        raise CollectionError(
            f"{directory / 'manifest.json'}: manifest field {field!r} names {relative!r}, which "
            f"leads outside the collection (to {path.resolve()}) through a symbolic link; "
            "refusing to open it; replace the link with the file itself, or rebuild with "
            "densekit index ... --overwrite"
        )
    return path
