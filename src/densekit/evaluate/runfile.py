"""TREC run files: ``qid Q0 docid rank score tag``, one line per retrieved document."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from densekit.corpus import ir_datasets_source
from densekit.errors import InputError
from densekit.files.text import decoded_lines

if TYPE_CHECKING:
    from densekit.retrieve.ranking import Ranking

Run = dict[str, dict[str, float]]
# Each query's hits, best first, as (document id, score).
RankedHits = dict[str, list[tuple[str, float]]]


def ranked_hits(
    query_ids: Sequence[str], rankings: Sequence[Ranking], ids: Sequence[str | None]
) -> RankedHits:
    """Rankings of collection rows as each query's (document id, score) pairs, best first;
    ``ids`` names each row."""
    return {
        query_id: [
            (str(ids[row]), float(score))
            for row, score in zip(ranking.rows.tolist(), ranking.scores.tolist(), strict=True)
        ]
        for query_id, ranking in zip(query_ids, rankings, strict=True)
    }


def write_run(
    path: str | Path, ranked: Mapping[str, Sequence[tuple[str, float]]], tag: str = "densekit"
) -> None:
    """Write rankings (best first) atomically: a crash never leaves a truncated run file."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with staging.open("w", encoding="utf-8") as handle:
        for query_id, hits in ranked.items():
            for rank, (doc_id, score) in enumerate(hits, start=1):
                handle.write(f"{query_id} Q0 {doc_id} {rank} {score:.6f} {tag}\n")
    os.replace(staging, path)


def read_run(path: str | Path) -> Run:
    """A TREC run file, or an ir_datasets id's run (``irds:ID``: its scoreddocs)."""
    if ir_datasets_source.is_irds(path):
        return ir_datasets_source.scored_documents(path)
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such run file")
    run: Run = {}
    for number, line in decoded_lines(path):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 6:
            raise InputError(
                f"{path}:{number}: expected 6 fields (qid Q0 docid rank score tag), "
                f"got {len(fields)}"
            )
        query_id, _, doc_id, _, score, _ = fields
        try:
            run.setdefault(query_id, {})[doc_id] = float(score)
        except ValueError:
            raise InputError(f"{path}:{number}: score {score!r} is not a number") from None
    return run
