"""The index spec grammar: what parses, what it means, and what is refused with the grammar."""

from __future__ import annotations

import pytest

from densekit.errors import InputError
from densekit.index.spec import DEFAULT_RESCORE_MULTIPLIER, IndexSpec, parse_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("flat", IndexSpec()),
        ("FLAT", IndexSpec()),
        ("HNSW32", IndexSpec(base="HNSW32")),
        ("HNSW32(efSearch=128)", IndexSpec(base="HNSW32", options={"efSearch": 128})),
        ("IVF256,PQ48", IndexSpec(base="IVF256,PQ48")),
        (
            "OPQ48,IVF256,PQ48(nprobe=16)+rescore*10",
            IndexSpec(base="OPQ48,IVF256,PQ48", options={"nprobe": 16}, rescore=10),
        ),
        ("binary+rescore*4", IndexSpec(base="binary", rescore=4)),
        ("int8+rescore", IndexSpec(base="int8", rescore=DEFAULT_RESCORE_MULTIPLIER)),
        ("dim128:HNSW32+rescore*4", IndexSpec(base="HNSW32", dim=128, rescore=4)),
        ("dim64:flat+rescore*8", IndexSpec(dim=64, rescore=8)),
    ],
)
def test_valid_specs_parse(text: str, expected: IndexSpec) -> None:
    assert parse_spec(text) == expected


@pytest.mark.parametrize(
    "text",
    ["HNSW32(efSearch=128)", "binary+rescore*4", "dim128:IVF256,PQ48(nprobe=8)+rescore*10"],
)
def test_specs_round_trip_through_their_string(text: str) -> None:
    assert str(parse_spec(text)) == text
    assert parse_spec(str(parse_spec(text))) == parse_spec(text)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "grammar"),
        ("HNSW32+rescore*", "grammar"),
        ("HNSW 32", "grammar"),
        ("dim0:flat", "dim must be"),
        ("HNSW32(ef=12)", "unknown option 'ef'"),
        ("HNSW32(efSearch=high)", "name=integer"),
        ("flat+rescore*4", "exact already"),
        ("binary+rescore*0", "at least 1"),
    ],
)
def test_bad_specs_name_the_problem_and_show_the_grammar(text: str, why: str) -> None:
    with pytest.raises(InputError) as error:
        parse_spec(text)
    assert why in str(error.value)
    assert "Grammar:" in str(error.value)
