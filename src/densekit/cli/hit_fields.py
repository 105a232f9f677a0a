"""`--filter` and `--fields`: which documents a search may return, and what it shows of them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from typing import Any

from densekit.cli.output import snippet
from densekit.corpus.filters import Filter, parse_filter
from densekit.retrieve.ranking import Hit

HIT_FIELDS = ("id", "score", "rank", "title", "text", "metadata")
FILTER_HELP = (
    "search only the documents whose metadata match, e.g. \"year >= 2020 and topic in ('ml', "
    "'ir')\": comparisons (= != < <= > >=), in (...), not in (...), exists, joined by and, or, "
    "not and parentheses; text and dates in quotes; id is the document id"
)


def add_filter_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--filter", metavar="EXPR", help=FILTER_HELP)


def filter_from(args: argparse.Namespace) -> Filter | None:
    """``--filter``, parsed: a syntax error names the column, before any work."""
    return None if args.filter is None else parse_filter(args.filter, source="--filter")


def add_fields_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fields",
        type=field_list,
        metavar="LIST",
        help=f"comma-separated hit fields to show ({', '.join(HIT_FIELDS)}) or metadata keys "
        "(default: rank, score, id and a snippet; with --json, every field)",
    )


def field_list(text: str) -> list[str]:
    fields = [part.strip() for part in text.split(",") if part.strip()]
    if not fields:
        raise argparse.ArgumentTypeError("give at least one field, e.g. id,score,year")
    return fields


def hit_record(hit: Hit, fields: Sequence[str] | None) -> dict[str, Any]:
    """The hit as JSON: every field, or those named (metadata keys under ``metadata``)."""
    whole = {name: getattr(hit, name) for name in HIT_FIELDS}
    whole["metadata"] = dict(hit.metadata)
    if fields is None:
        return whole
    record = {name: whole[name] for name in fields if name in HIT_FIELDS}
    keys = [name for name in fields if name not in HIT_FIELDS]
    if keys:
        metadata = record.setdefault("metadata", {})
        metadata.update({key: hit.metadata.get(key) for key in keys})
    return record


def hit_line(hit: Hit, fields: Sequence[str]) -> str:
    """The named fields of a hit on one line, for people."""
    shown = []
    for name in fields:
        if name == "score":
            shown.append(f"{hit.score:8.4f}")
        elif name in ("title", "text"):
            shown.append(snippet(getattr(hit, name), 60))
        elif name in HIT_FIELDS:
            shown.append(_text(getattr(hit, name)))
        else:
            shown.append(f"{name}={_text(hit.metadata.get(name))}")
    return "  ".join(shown)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return "-" if value is None else json.dumps(value)
