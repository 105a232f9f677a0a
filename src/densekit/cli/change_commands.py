"""`densekit add`, `update`, `delete` and `compact`: change a built collection in place."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from densekit.cli.arguments import utf8_argument
from densekit.cli.corpus_arguments import add_corpus_arguments, report_encoding
from densekit.cli.output import print_json
from densekit.corpus import CorpusReader, Document, FieldNames
from densekit.errors import InputError
from densekit.files.text import decoded_lines
from densekit.files.vectors import read_ids
from densekit.store import ChangeReport, compact_collection, update_collection

_COMMENT = re.compile(r"(?:^|\s)#")
# Tombstones above this share of rows make the summary suggest `densekit compact`.
_SUGGEST_COMPACTION = 0.2


def register(subparsers: argparse._SubParsersAction) -> None:
    add = subparsers.add_parser("add", help="add documents to a collection")
    _collection_and_corpus(add)
    add.add_argument(
        "--upsert", action="store_true", help="replace documents whose ids exist instead of failing"
    )
    add.set_defaults(handler=run_add)

    update = subparsers.add_parser("update", help="replace documents of a collection by id")
    _collection_and_corpus(update)
    update.set_defaults(handler=run_update)

    delete = subparsers.add_parser("delete", help="delete documents from a collection by id")
    delete.add_argument("collection", help="collection directory")
    delete.add_argument("ids", nargs="*", metavar="ID", help="document ids to delete")
    delete.add_argument(
        "--ids-file",
        type=Path,
        help="file of ids to delete: one per line (' #' starts a comment), or a .json list",
    )
    _change_options(delete)
    delete.set_defaults(handler=run_delete)

    compact = subparsers.add_parser(
        "compact", help="rewrite a collection without its deleted documents"
    )
    compact.add_argument("collection", help="collection directory")
    compact.add_argument("--quiet", action="store_true", help="no progress bars")
    compact.set_defaults(handler=run_compact)


def _collection_and_corpus(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("collection", help="collection directory")
    add_corpus_arguments(parser)
    _change_options(parser)
    parser.add_argument("--cache-dir", type=Path, help="embedding cache (default: the usual one)")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor fill the cache")


def _change_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compact-above",
        type=float,
        metavar="SHARE",
        help="compact right after the change once this share of rows (0-1) are deleted ones",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run_add(args: argparse.Namespace) -> int:
    documents = _read(args)
    kind = "upsert" if args.upsert else "add"
    return _apply(args, **{kind: documents})


def run_update(args: argparse.Namespace) -> int:
    return _apply(args, update=_read(args))


def run_delete(args: argparse.Namespace) -> int:
    ids = [utf8_argument(doc_id, "id") for doc_id in args.ids]
    if args.ids_file is not None:
        ids.extend(_ids_to_delete(args.ids_file))
    if not ids:
        raise InputError("no ids to delete: name them, or give --ids-file")
    return _apply(args, delete=ids)


def _ids_to_delete(path: Path) -> list[str]:
    """Ids one per line, where ``#`` at the start or after a space begins a comment (so ``c#1``
    is an id); or, for ids of any form, a ``.json`` list."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; give a file of ids, one per line")
    if path.suffix == ".json":
        return read_ids(path, stored=True)
    # Deleting checks that an id is stored, not that it would be accepted as a new one: ids
    # written before today's id rules can still be deleted.
    lines = (_COMMENT.split(line, maxsplit=1)[0].strip() for _, line in decoded_lines(path))
    return [line for line in lines if line]


def run_compact(args: argparse.Namespace) -> int:
    report = compact_collection(args.collection, progress=not args.quiet)
    if not report.removed:
        print(f"{args.collection}: no deleted documents; nothing to compact")
        return 0
    print(
        f"compacted {args.collection}: removed {report.removed} deleted documents, "
        f"{report.documents} remain; {report.bytes_before / 1e6:.1f} MB -> "
        f"{report.bytes_after / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    return 0


def _read(args: argparse.Namespace) -> list[Document]:
    if args.no_cache and args.cache_dir is not None:
        raise InputError("--no-cache and --cache-dir contradict each other; pick one")
    reader = CorpusReader(
        args.corpus,
        format=args.format,
        fields=FieldNames(args.id_field, args.text_field, args.title_field),
        on_empty=args.empty,
    )
    documents = list(reader)
    report_encoding(reader.stats.skipped_empty, reader.stats.first_skipped, None)
    return documents


def _apply(args: argparse.Namespace, **change: list[Document] | list[str]) -> int:
    if args.compact_above is not None and not 0 <= args.compact_above <= 1:
        raise InputError(f"--compact-above is a share of rows in [0, 1], got {args.compact_above}")
    report = update_collection(
        args.collection,
        cache=not getattr(args, "no_cache", False),
        cache_dir=getattr(args, "cache_dir", None),
        compact_above=args.compact_above,
        progress=not args.quiet,
        **change,
    )
    if args.json:
        print_json(report.to_dict())
    else:
        print(_summary(args.collection, report))
    return 0


def _summary(directory: str, report: ChangeReport) -> str:
    done = f"added {report.added}, updated {report.updated}, deleted {report.deleted}"
    line = f"{directory}: {done}; {report.documents} documents"
    if report.compacted:
        return line + " (compacted)"
    rows = report.documents + report.tombstones
    if report.tombstones:
        line += f", {report.tombstones} deleted rows kept until compaction"
        if report.tombstones > _SUGGEST_COMPACTION * rows:
            line += f" (densekit compact {directory} reclaims them)"
    return line
