"""Pipeline specs: parsing TOML and dicts, explaining, and refusing mistakes with their place."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.errors import InputError
from densekit.retrieve.fusion import FusionConfig
from densekit.retrieve.pipeline import CandidateStage, Pipeline, RerankStage, builtin_pipeline

FULL = """
name = "hybrid-rerank"

[[candidates]]
retriever = "dense"
k = 50

[[candidates]]
retriever = "bm25"

[fusion]
method = "convex"
weights = [0.4, 0.6]

[[rerank]]
model = "models/reranker"
top_n = 20
batch = 8
weight = 0.5
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file_parses_into_stages_and_back(tmp_path: Path) -> None:
    pipeline = Pipeline.from_toml(write(tmp_path, FULL))
    assert pipeline == Pipeline(
        (CandidateStage("dense", 50), CandidateStage("bm25", 100)),
        FusionConfig("convex", weights=(0.4, 0.6)),
        (RerankStage("models/reranker", top_n=20, batch=8, weight=0.5),),
        name="hybrid-rerank",
    )
    assert max(stage.depth(10, pipeline.fused) for stage in pipeline.candidates) == 100
    assert Pipeline.from_dict(pipeline.to_dict()) == pipeline
    explained = pipeline.explain()
    assert "convex sum of min-max normalised scores: 0.4 × dense, 0.6 × bm25" in explained
    assert "rerank the top 20 with cross-encoder 'models/reranker'" in explained
    assert "score = 0.5 × reranker + 0.5 × incoming score" in explained
    calibrated = builtin_pipeline("hybrid").explain()
    assert "calibrated per query: 1 × dense, 10 to 48 (as its top stands out) × bm25" in calibrated


def test_the_name_defaults_to_the_file_name_and_fusion_to_rrf(tmp_path: Path) -> None:
    text = '[[candidates]]\nretriever = "dense"\n[[candidates]]\nretriever = "bm25"\n'
    pipeline = Pipeline.from_toml(write(tmp_path, text))
    assert pipeline.name == "pipeline" and pipeline.fusion is None
    assert "reciprocal rank fusion, sum of 1 / (60 + rank)" in pipeline.explain()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[candidates]]\nretriever = "splode"\n', "candidates[1]: unknown retriever 'splode'"),
        ('[[candidates]]\nretriever = "dense"\nkk = 3\n', "candidates[1]: unknown key 'kk'"),
        ('[[candidates]]\nretriever = "dense"\nk = 0\n', "candidates[1].k must be"),
        ("[[candidates]]\nk = 5\n", "candidates[1]: no retriever given"),
        ("name = 'x'\n", "no [[candidates]] stage"),
        ('stages = 1\n[[candidates]]\nretriever = "dense"\n', "unknown key 'stages'"),
        (
            '[[candidates]]\nretriever = "dense"\n[[candidates]]\nretriever = "bm25"\n'
            '[fusion]\nmethod = "convex"\nweights = [1.0]\n',
            "fusion.weights has 1 weights for 2 candidate stages",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[fusion]\nmethod = "rrf"\nweights = [1.0]\n',
            'fusion.weights apply to method = "convex" or "calibrated"',
        ),
        ('[[candidates]]\nretriever = "dense"\n[fusion]\nmethod = "max"\n', "unknown 'max'"),
        ('[[candidates]]\nretriever = "dense"\n[[rerank]]\ntop_n = 5\n', "rerank[1]: no model"),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nkind = "oracle"\n',
            "rerank[1].kind: unknown 'oracle'",
        ),
        ('[[candidates]]\nretriever = "dense"\n[[candidates]]\nretriever = "dense"\n', "already"),
        ("[[candidates]\n", "not a valid TOML file"),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nweight = 0\n',
            "rerank[1].weight must be above 0 and at most 1",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\ntop_n = 5\n'
            '[[rerank]]\nmodel = "m2"\ntop_n = 9\nweight = 0.5\n',
            "rerank[2]: a blend (weight < 1) reads the incoming scores",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nweight = "half"\n',
            "rerank[1].weight must be a number",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[fusion]\nmethod = "rrf"\nk = "60"\n',
            "fusion.k must be a whole number",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nviews = 4\n',
            'rerank[1].views: only kind = "mvp" reads it',
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nkind = "mvp"\n'
            "views = 0\n",
            "rerank[1].views must be a whole number of at least 1",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nkind = "mvp"\n'
            "window = 20\n",
            'rerank[1].window: only kind = "listwise" reads it',
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nkind = "mvp"\n'
            "max_length = 128\n",
            "rerank[1].max_length: an mvp model reads the length it was trained with",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[rerank]]\nmodel = "m"\nkind = "listwise"\n'
            "window = 8\nstep = 9\n",
            "rerank[1]: a listwise window of 8 passages must be at least 2 and slide by 1 to 8",
        ),
        (
            '[[candidates]]\nretriever = "dense"\n[[candidates]]\nretriever = "bm25"\n'
            '[fusion]\nmethod = "convex"\nweights = [nan, 1.0]\n',
            "must be non-negative",
        ),
    ],
)
def test_mistakes_are_refused_with_their_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        Pipeline.from_toml(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_a_listwise_window_slides_by_half_unless_told() -> None:
    stage = RerankStage("smollm2", kind="listwise", window=6)
    assert (stage.listwise_window, stage.listwise_step) == (6, 3)
    assert (RerankStage("smollm2", kind="listwise").listwise_step) == 10
    pipeline = Pipeline((CandidateStage("bm25", 9),), rerank=(stage,))
    assert "windows of 6 sliding by 3" in pipeline.explain()


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such pipeline file"):
        Pipeline.from_toml(tmp_path / "nope.toml")


def test_default_convex_weights_are_equal_shares() -> None:
    pipeline = Pipeline.from_dict(
        {
            "candidates": [{"retriever": "dense"}, {"retriever": "bm25"}],
            "fusion": {"method": "convex"},
        }
    )
    assert "0.5 × dense, 0.5 × bm25" in pipeline.explain()
