"""The OpenAPI spec as this server serves it: its limits as they are now."""

from __future__ import annotations

from typing import Any


def served_spec(spec: dict[str, Any], *, widest: int | None, keyed: bool) -> dict[str, Any]:
    """``spec`` with `dimensions` bounded by the widest model served (None: none yet), and,
    when writes need no key (``keyed`` False), no key declared on them."""
    if widest is not None:
        _bound_dimensions(spec, widest)
    if not keyed:
        for operations in spec["paths"].values():
            for operation in operations.values():
                operation.pop("security", None)
    return spec


def _bound_dimensions(spec: dict[str, Any], widest: int) -> None:
    field = spec["components"]["schemas"]["EmbeddingsRequest"]["properties"]["dimensions"]
    for option in field.get("anyOf", [field]):
        if option.get("type") == "integer":
            option["maximum"] = widest
    field["description"] = (
        "truncate to this many dimensions (then re-normalise); at most the model's width, "
        "listed by GET /v1/models"
    )
