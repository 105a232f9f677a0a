"""Reading the TOML files users write (pipelines, recipes) and refusing keys nobody reads."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from densekit.errors import InputError


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """The parsed file; a missing or malformed one is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: no such {what} file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a valid TOML file ({exc})") from None


def refuse_unknown_keys(data: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(
            f"{where}: unknown key {unknown[0]!r}; expected one of {', '.join(sorted(known))}"
        )
