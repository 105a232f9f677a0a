"""Reading text files: UTF-8 only, ``.gz`` opened transparently, every decoding error named by
file and line."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from densekit.errors import InputError


def open_binary(path: Path) -> BinaryIO:
    """Open a file for reading bytes, decompressing ``.gz`` transparently."""
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return path.open("rb")


def decoded_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)``; bytes that are not UTF-8, a damaged ``.gz`` or an
    unreadable file are errors naming the file (and line). A leading BOM is dropped."""
    number = 0
    try:
        with open_binary(path) as handle:
            for raw in handle:  # not enumerate(), whose cached result tuple keeps the bytes
                number += 1
                try:
                    line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
                except UnicodeDecodeError as exc:
                    raise _not_utf8(f"{path}:{number}", raw, exc.start) from None
                del raw  # one copy of a huge line at a time, not the bytes and the text
                yield number, line
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
        raise InputError(
            f"{path}:{number + 1}: cannot read the file ({exc}); check that it is complete"
        ) from None


def decoded_text(path: Path, *, bom: bool = True) -> str:
    """The whole file as text; bytes that are not UTF-8 are an error naming the file and line.
    ``bom``: drop a leading byte order mark."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the file ({exc})") from None
    try:
        return raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        raw_line = raw[line_start : exc.start + 4]
        raise _not_utf8(f"{path}:{line}", raw_line, exc.start - line_start) from None


def _not_utf8(where: str, line: bytes, start: int) -> InputError:
    return InputError(
        f"{where}: not valid UTF-8 (byte {start} of the line: {line[start : start + 4]!r}); "
        "re-encode the file as UTF-8"
    )
