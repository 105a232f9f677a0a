"""`densekit search`: query a collection."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from densekit.cli.arguments import (
    add_fusion_arguments,
    add_index_search_arguments,
    add_pipeline_argument,
    fusion_from,
    index_params_from,
    pipeline_from,
    positive_int,
    utf8_argument,
)
from densekit.cli.hit_fields import (
    add_fields_argument,
    add_filter_argument,
    filter_from,
    hit_line,
    hit_record,
)
from densekit.cli.output import print_json, snippet, warn
from densekit.cli.ray_arguments import add_ray_arguments, on_cluster
from densekit.encode import load_encoder
from densekit.errors import InputError
from densekit.files.vectors import read_vectors
from densekit.retrieve import RETRIEVER_NAMES, Collection, FusionConfig
from densekit.retrieve.pipeline import Pipeline
from densekit.retrieve.searcher import ListWeight


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("search", help="search a collection")
    parser.add_argument("collection", help="collection directory")
    parser.add_argument("query", help="query text (with --query-vectors: the query's id)")
    parser.add_argument(
        "-k", type=positive_int, default=10, help="number of results (default: %(default)s)"
    )
    parser.add_argument("--retriever", choices=RETRIEVER_NAMES, help="default: the collection's")
    parser.add_argument(
        "--model", help="encode the query with this model (must be the collection's)"
    )
    parser.add_argument(
        "--query-vectors",
        metavar="FILE",
        help="take the query's vector from this file (.parquet with id and vector columns, or "
        "a densekit encode folder; made by the collection's model) instead of encoding it",
    )
    add_fusion_arguments(parser, "default: the collection's")
    add_pipeline_argument(parser)
    add_index_search_arguments(parser)
    add_filter_argument(parser)
    add_fields_argument(parser)
    parser.add_argument(
        "--explain",
        action="store_true",
        help="also show how this query's candidate lists were weighed in the fusion",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_ray_arguments(parser, workers=False)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    utf8_argument(args.query, "the query")
    pipeline = pipeline_from(args)
    with on_cluster(args) as opener:
        collection = Collection(opener(args.collection) if opener else args.collection)
        try:
            return _search(args, collection, pipeline)
        finally:
            collection.close()


def _search(args: argparse.Namespace, collection: Collection, pipeline: Pipeline | None) -> int:
    where = filter_from(args)
    if args.query_vectors:
        # The query is an id here, not text: only the dense retriever may see it.
        if args.model or pipeline is not None or args.retriever not in (None, "dense"):
            raise InputError(
                "--query-vectors search the dense index with a vector, and the query is its id, "
                "not text: drop --model, --pipeline and any --retriever but dense"
            )
        adapter = collection.stored.adapter
        if adapter is not None and adapter.kind == "lexsem":
            raise InputError(
                f"{args.collection}: its lexical bridge reads the query's text, which "
                "--query-vectors do not give; search with text, or evaluate with densekit eval "
                "--query-vectors (which knows each query's text)"
            )
        args.retriever = "dense"
        table = read_vectors(args.query_vectors)
        collection = collection.with_query_vectors(table, {args.query: args.query})
    elif args.model:  # checked even for BM25: naming the wrong model is always a mistake
        collection = collection.with_encoder(load_encoder(args.model))
    base = FusionConfig.stored(collection.manifest.fusion)
    searcher = collection.searcher(
        args.retriever,
        fusion=fusion_from(args, base) if pipeline is None else None,
        pipeline=pipeline,
        index_params=index_params_from(args),
    )
    weighed = None
    if args.explain:
        [hits], [weighed] = searcher.search_explained([args.query], args.k, where)
    else:
        [hits] = searcher.search([args.query], args.k, where)
    for note in searcher.runner.notes:
        warn(note)
    if args.json:
        hit_list = [hit_record(h, args.fields) for h in hits]
        result = {"query": args.query, "retriever": searcher.name, "hits": hit_list}
        if weighed is not None:
            result["explain"] = {
                "fusion": searcher.fusion.to_dict() if searcher.fusion else None,
                "lists": [asdict(part) for part in weighed],
            }
        print_json(result)
        return 0
    for hit in hits:
        if args.fields:
            print(f"{hit.rank:>3}. {hit_line(hit, args.fields)}")
            continue
        title = f"{hit.title} — " if hit.title else ""
        print(f"{hit.rank:>3}. {hit.score:8.4f}  {hit.id}  {snippet(title + hit.text)}")
    if not hits:
        print("no results")
    if weighed is not None:
        print(explanation(searcher.fusion, weighed))
    return 0


def explanation(fusion: FusionConfig | None, weighed: list[ListWeight]) -> str:
    """How one query's lists were weighed, for people."""
    how = "one list, no fusion" if fusion is None else f"{fusion.method} fusion"
    lines = [f"weights for this query ({how}):"]
    for part in weighed:
        weight = "" if part.weight is None else f"weight {part.weight:g}, "
        line = f"  {part.retriever:<7} {part.candidates:>4} candidates, {weight}"
        line += f"share {part.share:.0%}"
        if part.scale is not None and fusion is not None and fusion.method == "calibrated":
            if part.scale.center == 0.0:
                line += f" (scores / {part.scale.spread:.4g}, the most the query can score)"
            else:
                line += (
                    f" (scores - {part.scale.center:.4g}, / {part.scale.spread:.4g}: mean and "
                    "deviation over random documents)"
                )
        lines.append(line)
    return "\n".join(lines)
