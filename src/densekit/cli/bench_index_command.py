"""`densekit bench-index`: the quality / speed / memory trade-off of index specs on a collection."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from densekit.cli.arguments import positive_int
from densekit.cli.output import print_json, warn
from densekit.corpus.readers import json_records
from densekit.errors import InputError
from densekit.files.text import decoded_lines
from densekit.index.bench import bench_specs, format_table, parse_spec_list, plot_recall_qps
from densekit.index.vectors import ShardedVectors
from densekit.store import StoredCollection

DEFAULT_SPECS = "flat;HNSW32;IVF256,Flat(nprobe=16);binary+rescore*4;int8+rescore*4"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench-index", help="compare index specs on a collection's own vectors"
    )
    parser.add_argument("collection", help="collection directory (with dense vectors)")
    parser.add_argument(
        "--specs", default=DEFAULT_SPECS, help="specs separated by ';' (default: %(default)s)"
    )
    parser.add_argument(
        "--queries",
        help="query texts: a .txt file (one per line) or BEIR queries.jsonl; default: a sample "
        "of the collection's own vectors",
    )
    parser.add_argument(
        "--sample", type=positive_int, default=200, help="queries sampled (default: %(default)s)"
    )
    parser.add_argument("-k", type=positive_int, default=10, help="recall@k (default: 10)")
    parser.add_argument("--out", help="write the table as JSON to this file")
    parser.add_argument("--plot", help="write a recall-vs-QPS plot (PNG) to this file")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    specs = parse_spec_list(args.specs)
    if not specs:
        raise InputError("--specs names no index; e.g. --specs 'flat;HNSW32'")
    collection = StoredCollection(args.collection)
    vectors, groups = collection.dense_vectors()
    queries = _queries(collection, vectors, args)
    if not args.json:
        print(f"{args.collection}: {vectors.rows} vectors, {len(queries)} queries, k={args.k}")
    results = bench_specs(
        vectors,
        groups,
        specs,
        queries,
        k=args.k,
        on_result=None if args.json else lambda r: print(f"  measured {r.spec}", flush=True),
    )
    report = {
        "collection": str(Path(args.collection).resolve()),
        "vectors": vectors.rows,
        "queries": len(queries),
        "k": args.k,
        "results": [r.to_dict() for r in results],
    }
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.plot and not plot_recall_qps(results, args.k, Path(args.plot), str(args.collection)):
        warn("no plot: matplotlib is not installed (pip install 'densekit[plots]')")
    if args.json:
        print_json(report)
    else:
        print(format_table(results, args.k))
    return 0


def _queries(
    collection: StoredCollection, vectors: ShardedVectors, args: argparse.Namespace
) -> np.ndarray:
    if args.queries is None:
        return vectors.sample(min(args.sample, vectors.rows), seed=1)
    path = Path(args.queries)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix in (".jsonl", ".json"):
        texts = []
        for where, record in json_records(path):
            if not isinstance(record.get("text"), str):
                raise InputError(f"{where}: expected a JSON object with a 'text' string")
            texts.append(record["text"])
    else:
        texts = [line.strip() for _, line in decoded_lines(path) if line.strip()]
    if not texts:
        raise InputError(f"{path}: no queries")
    return collection.encoder.encode_queries(texts[: args.sample])
