"""Which pipeline a search request runs: one served by name, or an inline one within the
server's limits and its own reranking models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import HTTPException

from densekit.retrieve.pipeline import Pipeline
from densekit.serve import schemas


def requested_pipeline(
    served: Mapping[str, Pipeline], given: str | dict[str, Any] | None
) -> Pipeline | None:
    if given is None:
        return None
    if isinstance(given, str):
        found = served.get(given)
        if found is None:
            names = ", ".join(sorted(served)) or "none"
            raise HTTPException(404, f"no pipeline named {given!r}; served pipelines: {names}")
        return found
    pipeline = Pipeline.from_dict(given, where="pipeline", default_name="inline")
    for i, candidate in enumerate(pipeline.candidates, 1):
        if candidate.k > schemas.MAX_K:
            raise HTTPException(400, f"pipeline: candidates[{i}].k must be at most {schemas.MAX_K}")
    for i, stage in enumerate(pipeline.rerank, 1):
        if stage.top_n > schemas.MAX_K or stage.batch > 256:
            raise HTTPException(
                400, f"pipeline: rerank[{i}]: top_n must be at most {schemas.MAX_K}, batch 256"
            )
    # Models load from the server's disk or a hub: an inline pipeline may only use the models
    # the server's own pipelines already name.
    allowed = {stage.model for p in served.values() for stage in p.rerank}
    for i, stage in enumerate(pipeline.rerank, 1):
        if stage.model not in allowed:
            raise HTTPException(
                400,
                f"pipeline: rerank[{i}].model {stage.model!r} is not one this server serves; "
                f"use one of: {', '.join(sorted(allowed)) or 'none (no served pipeline reranks)'}",
            )
    return pipeline
