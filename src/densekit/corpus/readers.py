"""Streaming corpus readers: BEIR/any JSONL, CSV/TSV, Parquet, and folders of .txt/.md files.

Readers never load a whole file: they yield one :class:`Document` at a time and name the
file and line of anything they cannot read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from densekit.corpus import ir_datasets_source
from densekit.corpus.document import Document, cell_value, metadata_value
from densekit.errors import InputError, MissingDependencyError
from densekit.files.ids import LONE_SURROGATE, check_id, text_id
from densekit.files.text import decoded_lines, decoded_text

CorpusFormat = Literal["auto", "jsonl", "csv", "tsv", "parquet", "folder", "irds"]
EmptyPolicy = Literal["skip", "error"]

ID_FIELDS = ("_id", "id", "docid", "doc_id")
TEXT_FIELDS = ("text", "contents", "content", "body")
DEFAULT_TITLE_FIELD = "title"
FOLDER_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")


@dataclass(frozen=True)
class FieldNames:
    """Which record fields hold the id, text and title; ``None`` means: detect from the data."""

    id: str | None = None
    text: str | None = None
    title: str | None = None


@dataclass
class ReadStats:
    """What a reader saw besides the documents it yielded."""

    documents: int = 0
    skipped_empty: int = 0
    first_skipped: list[str] = field(default_factory=list)


def detect_format(path: Path) -> CorpusFormat:
    """Pick a reader from the path: a directory, or the file suffix (``.gz`` is looked through)."""
    if path.is_dir():
        return "folder"
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    last = suffixes[-1] if suffixes else ""
    by_suffix: dict[str, CorpusFormat] = {
        ".jsonl": "jsonl",
        ".json": "jsonl",
        ".ndjson": "jsonl",
        ".csv": "csv",
        ".tsv": "tsv",
        ".parquet": "parquet",
    }
    if last not in by_suffix:
        raise InputError(
            f"{path}: cannot tell the corpus format from the suffix {last or '(none)'!r}; "
            "use .jsonl, .csv, .tsv, .parquet (optionally .gz), a folder, or pass --format"
        )
    return by_suffix[last]


class CorpusReader:
    """Iterate the documents of a corpus file or folder.

    >>> reader = CorpusReader("corpus.jsonl")          # doctest: +SKIP
    >>> for doc in reader: ...                           # doctest: +SKIP
    >>> reader.stats.skipped_empty                       # doctest: +SKIP
    """

    def __init__(
        self,
        path: str | Path,
        *,
        format: CorpusFormat = "auto",
        fields: FieldNames | None = None,
        on_empty: EmptyPolicy = "skip",
    ) -> None:
        self.path = Path(path)
        self.irds = ir_datasets_source.is_irds(path)
        if self.irds:  # an ir_datasets id, not a path
            if format not in ("auto", "irds"):
                raise InputError(f"{path}: an ir_datasets id has its own format; drop --format")
        elif not self.path.exists():
            raise InputError(f"{self.path}: no such file or directory; check the corpus path")
        self.format: CorpusFormat = (
            "irds" if self.irds else (detect_format(self.path) if format == "auto" else format)
        )
        if not self.irds and self.path.is_dir() != (self.format == "folder"):
            raise InputError(
                f"{self.path}: format {self.format!r} does not fit a "
                f"{'folder' if self.path.is_dir() else 'file'}; use --format auto"
            )
        self.fields = fields or FieldNames()
        self.on_empty = on_empty
        self.stats = ReadStats()

    @property
    def name(self) -> str:
        """The corpus as the user named it, for messages."""
        return str(self.path)

    @property
    def source(self) -> str:
        """The corpus, the same wherever the command runs from."""
        return str(self.path) if self.irds else str(self.path.resolve())

    def __iter__(self) -> Iterator[Document]:
        self.stats = ReadStats()
        return counted_documents(self._documents(), self.on_empty, self.stats)

    def _documents(self) -> Iterator[Document]:
        if self.format == "jsonl":
            return _read_jsonl(self.path, self.fields)
        if self.format in ("csv", "tsv"):
            return _read_delimited(self.path, self.fields, "\t" if self.format == "tsv" else ",")
        if self.format == "parquet":
            return _read_parquet(self.path, self.fields)
        if self.format == "folder":
            return _read_folder(self.path)
        if self.format == "irds":
            return ir_datasets_source.documents(self.path)
        raise InputError(f"unknown corpus format {self.format!r}")


def counted_documents(
    documents: Iterable[Document], on_empty: EmptyPolicy, stats: ReadStats
) -> Iterator[Document]:
    """``documents`` without the empty ones (or an error at the first, by ``on_empty``),
    counted into ``stats``."""
    for doc in documents:
        if doc.is_empty:
            if on_empty == "error":
                raise InputError(
                    f"{doc.source}: document {doc.id!r} is empty; remove it, or let "
                    "empty documents be skipped (on_empty='skip', the CLI default)"
                )
            stats.skipped_empty += 1
            if len(stats.first_skipped) < 5:
                stats.first_skipped.append(doc.id)
            continue
        stats.documents += 1
        yield doc


def read_corpus(
    path: str | Path,
    *,
    format: CorpusFormat = "auto",
    fields: FieldNames | None = None,
    on_empty: EmptyPolicy = "skip",
) -> Iterator[Document]:
    """Yield the documents of ``path``; see :class:`CorpusReader` for the skip counts."""
    return iter(CorpusReader(path, format=format, fields=fields, on_empty=on_empty))


def _choose(
    explicit: str | None, candidates: Sequence[str], available: Iterable[str]
) -> str | None:
    if explicit is not None:
        return explicit
    present = set(available)
    return next((name for name in candidates if name in present), None)


@dataclass(frozen=True)
class _Resolved:
    id: str
    text: str
    title: str


def _resolve_fields(fields: FieldNames, keys: Iterable[str], where: str) -> _Resolved:
    keys = list(keys)
    id_field = _choose(fields.id, ID_FIELDS, keys)
    text_field = _choose(fields.text, TEXT_FIELDS, keys)
    # The title is optional per record, so it is never detected from the first one alone.
    title_field = fields.title or DEFAULT_TITLE_FIELD
    for role, chosen, candidates, flag in (
        ("id", id_field, ID_FIELDS, "--id-field"),
        ("text", text_field, TEXT_FIELDS, "--text-field"),
    ):
        if chosen is None:
            raise InputError(
                f"{where}: no {role} field (looked for {', '.join(candidates)}; found "
                f"{', '.join(keys) or 'none'}); name it with {flag}"
            )
    assert id_field is not None and text_field is not None
    return _Resolved(id_field, text_field, title_field)


def _record_to_document(
    record: Mapping[str, Any],
    names: _Resolved,
    where: str,
    *,
    text_ids: bool = False,
    typed_cells: bool = False,
) -> Document:
    """``text_ids``: the format's cells are text (CSV, TSV), so the id is the trimmed cell;
    elsewhere it must be a string as given (see :mod:`densekit.files.ids`). ``typed_cells``:
    metadata cells that read as numbers or true/false are stored as such (:func:`cell_value`)."""
    for role, name in (("id", names.id), ("text", names.text)):
        if record.get(name) is None:
            raise InputError(f"{where}: missing {role} field {name!r}; every record needs one")
    id_where = f"{where}: field {names.id!r}"
    raw_id = record[names.id]
    doc_id = text_id(raw_id, id_where) if text_ids else check_id(raw_id, id_where)
    text = record[names.text]
    title = record.get(names.title)
    if not isinstance(text, str):
        raise InputError(
            f"{where}: field {names.text!r} of document {doc_id!r} is a "
            f"{type(text).__name__}, not text"
        )
    used = {names.id, names.text, names.title}
    read = cell_value if typed_cells else metadata_value
    metadata = {k: read(v) for k, v in record.items() if k not in used and v is not None}
    # Text, title and metadata are stored as UTF-8, which a lone surrogate (from a JSON \u
    # escape) cannot be.
    first = next(_lone_surrogates({names.text: text, names.title: title, **metadata}), None)
    if first is not None:
        place, surrogate = first
        raise InputError(
            f"{where}: {place} of document {doc_id!r} holds a lone surrogate "
            f"({surrogate.group()!r} at position {surrogate.start()}), which is not text; "
            "fix the \\u escape that wrote it"
        )
    return Document(
        id=doc_id,
        text=text,
        title=title if isinstance(title, str) else "",
        metadata=metadata,
        source=where,
    )


def _lone_surrogates(value: Any, field: str = "") -> Iterator[tuple[str, re.Match[str]]]:
    """Where ``value`` (a record's fields, nested) holds a lone surrogate: ("field 'a.b[2]'",
    the match), or ("a key of the record", the match) for a field's name."""
    if isinstance(value, str):
        found = LONE_SURROGATE.search(value)
        if found is not None:
            yield f"field {field!r}", found
    elif isinstance(value, dict):
        for key, item in value.items():
            found = LONE_SURROGATE.search(key)
            if found is not None:
                yield (f"a key of field {field!r}" if field else "a key of the record"), found
            yield from _lone_surrogates(item, f"{field}.{key}" if field else key)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            yield from _lone_surrogates(item, f"{field}[{number}]")


def json_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(file:line, object)`` for each non-blank line of a JSON-lines file."""
    for number, line in decoded_lines(path):
        if line.isspace():  # not line.strip(): that would copy a huge line once more
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
        except RecursionError:
            raise InputError(f"{where}: JSON nested too deeply to read; flatten it") from None
        del line  # the record holds the text now; a huge line is not kept twice
        if not isinstance(record, dict):
            raise InputError(f"{where}: expected a JSON object, got {type(record).__name__}")
        yield where, record


def _read_jsonl(path: Path, fields: FieldNames) -> Iterator[Document]:
    names: _Resolved | None = None
    for where, record in json_records(path):
        if names is None:
            names = _resolve_fields(fields, record.keys(), where)
        yield _record_to_document(record, names, where)


def _read_delimited(path: Path, fields: FieldNames, delimiter: str) -> Iterator[Document]:
    """CSV follows RFC 4180 quoting, strictly; TSV has no quoting (a quote is just a character),
    as in MS MARCO-style collections."""
    last_line = [0]

    def lines() -> Iterator[str]:
        for number, line in decoded_lines(path):
            last_line[0] = number
            yield line

    csv.field_size_limit(2**31 - 1)  # full-text articles exceed the 128 KiB default
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(lines(), delimiter=delimiter, quoting=quoting, strict=True)

    def records() -> Iterator[tuple[str, list[str]]]:
        while True:
            where = f"{path}:{last_line[0] + 1}"  # a quoted record may span several lines
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise InputError(f"{where}: {exc}; check the quoting") from None
            yield where, row

    rows = records()
    first = next(rows, None)
    if first is None:
        return
    header = first[1]
    names = _resolve_fields(fields, header, f"{path}:1 (header)")
    for role, explicit in (("id", fields.id), ("text", fields.text)):
        if explicit is not None and explicit not in header:
            raise InputError(
                f"{path}:1 (header): no column {explicit!r} for the {role}; "
                f"columns are {', '.join(header)}"
            )
    for where, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"{where}: {len(row)} columns where the header has {len(header)}; "
                "check the delimiter and quoting"
            )
        record = dict(zip(header, row, strict=True))
        yield _record_to_document(record, names, where, text_ids=True, typed_cells=True)


def _read_parquet(path: Path, fields: FieldNames) -> Iterator[Document]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingDependencyError("pyarrow", "parquet") from None
    import pyarrow

    try:
        parquet = pq.ParquetFile(path)
    except (pyarrow.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    names = _resolve_fields(fields, parquet.schema_arrow.names, str(path))
    row = 0
    for batch in parquet.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            yield _record_to_document(record, names, f"{path}:row {row}")


def _read_folder(root: Path) -> Iterator[Document]:
    """Each file a document: its path under ``root`` the id; Markdown, HTML and PDF read as
    :mod:`densekit.corpus.markup` does; its path and modification time (UTC) in the metadata."""
    from densekit.corpus.chunking import SECTIONS_KEY
    from densekit.corpus.markup import ReadableText, read_html, read_markdown, read_pdf

    files = sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in FOLDER_SUFFIXES
    )
    for file in files:
        relative = file.relative_to(root).as_posix()
        doc_id = check_id(relative, f"{file}: its path under {root}")
        suffix = file.suffix.lower()
        if suffix == ".pdf":
            read = read_pdf(file)
        else:
            text = decoded_text(file, bom=False)
            if suffix in (".md", ".markdown"):
                read = read_markdown(text, str(file))
            elif suffix in (".html", ".htm"):
                read = read_html(text)
            else:
                read = ReadableText(title="", text=text)
        modified = datetime.fromtimestamp(file.stat().st_mtime, UTC).isoformat(timespec="seconds")
        metadata = {**read.metadata, "path": relative, "modified": modified}
        if read.sections:  # chunks are cut at headings first (corpus.chunking)
            metadata[SECTIONS_KEY] = read.sections
        yield Document(doc_id, read.text, read.title, metadata, source=str(file))
