from __future__ import annotations

import numpy as np
import pytest

from densekit.errors import InputError
from densekit.retrieve import FusionConfig, Ranking, convex_fusion, reciprocal_rank_fusion
from densekit.retrieve.fusion import BM25_WEIGHT, blend


def ranking(rows: list[int], scores: list[float]) -> Ranking:
    return Ranking(np.array(rows, dtype=np.int64), np.array(scores, dtype=np.float32))


def test_rrf_matches_the_formula() -> None:
    fused = reciprocal_rank_fusion([ranking([1, 2, 3], [9, 8, 7]), ranking([3, 1], [5, 4])], k=60)
    expected = {1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61}
    assert fused.rows.tolist() == [1, 3, 2]
    np.testing.assert_allclose(fused.scores, [expected[r] for r in fused.rows.tolist()], rtol=1e-6)


def test_convex_fusion_min_max_normalises_each_list() -> None:
    dense = ranking([1, 2, 3], [0.9, 0.5, 0.1])  # normalised: 1, 0.5, 0
    lexical = ranking([3, 4], [20.0, 10.0])  # normalised: 1, 0
    fused = convex_fusion([dense, lexical], [0.6, 0.4])
    scores = dict(zip(fused.rows.tolist(), fused.scores.tolist(), strict=True))
    assert scores == pytest.approx({1: 0.6, 2: 0.3, 3: 0.4, 4: 0.0})
    assert fused.rows.tolist() == [1, 3, 2, 4]


def test_blend_min_max_normalises_both_sides() -> None:
    new = np.array([10.0, 0.0, 5.0], dtype=np.float32)  # normalised: 1, 0, 0.5
    old = np.array([0.3, 0.2, 0.1], dtype=np.float32)  # normalised: 1, 0.5, 0
    np.testing.assert_allclose(blend(new, old, 0.25), [1.0, 0.375, 0.125])
    np.testing.assert_allclose(blend(new, old, 1.0), [1.0, 0.0, 0.5])
    # A constant side counts as all equally good: the other side decides the order.
    assert np.argsort(-blend(new, np.ones(3, np.float32), 0.5)).tolist() == [0, 2, 1]


def test_fuse_dispatches_on_method_and_validates() -> None:
    a, b = ranking([1], [1.0]), ranking([2], [1.0])
    assert FusionConfig.hybrid("convex", alpha=1.0).fuse([a, b]).rows.tolist()[0] == 1
    assert FusionConfig.hybrid("convex", alpha=0.0).fuse([a, b]).rows.tolist()[0] == 2
    assert len(FusionConfig(method="rrf").fuse([a, b])) == 2
    with pytest.raises(InputError):
        FusionConfig.hybrid(alpha=1.5)
    with pytest.raises(InputError):
        FusionConfig(method="max")  # type: ignore[arg-type]


def test_a_fusion_names_its_method() -> None:
    # The hybrid default is convex, a pipeline file's is rrf: no silent choice between them.
    with pytest.raises(TypeError):
        FusionConfig()  # type: ignore[call-arg]
    assert FusionConfig.from_dict({}).method == "rrf"


def test_z_score_fusion_measures_each_score_against_its_list_s_spread() -> None:
    dense = ranking([1, 2, 3, 4], [0.84, 0.73, 0.59, 0.37])  # z: 1.1819, 0.5554, ...
    lexical = ranking([2, 1, 3, 4], [4.5, 3.7, 2.0, 1.1])  # z: 1.2461, 0.6509, ...
    z = convex_fusion([dense, lexical], [0.5, 0.5], "z-score")
    scores = dict(zip(z.rows.tolist(), z.scores.tolist(), strict=True))
    assert scores[1] == pytest.approx(0.5 * (1.18190 + 0.65093), abs=1e-4)
    assert scores[2] == pytest.approx(0.5 * (0.55536 + 1.24609), abs=1e-4)
    assert z.rows.tolist()[:2] == [1, 2]
    # Min-max stretches each list's range to [0, 1] instead, and orders the two the other way.
    assert convex_fusion([dense, lexical], [0.5, 0.5]).rows.tolist()[:2] == [2, 1]


def test_z_score_fusion_scores_a_missing_document_at_the_list_s_lowest() -> None:
    dense = ranking([1, 2], [0.9, 0.1])  # z: 1, -1
    lexical = ranking([3, 4, 5], [3.0, 2.0, 1.0])  # z: 1.2247, 0, -1.2247
    fused = convex_fusion([dense, lexical], [0.5, 0.5], "z-score")
    scores = dict(zip(fused.rows.tolist(), fused.scores.tolist(), strict=True))
    low_dense, low_lexical = -1.0, -1.2247449
    assert scores[1] == pytest.approx(0.5 * (1.0 + low_lexical), rel=1e-5)
    assert scores[3] == pytest.approx(0.5 * (low_dense + 1.2247449), rel=1e-5)
    assert scores[5] == pytest.approx(0.5 * (low_dense + low_lexical), rel=1e-5)
    # A constant list carries no preference: it adds nothing to any document.
    flat = convex_fusion([ranking([1, 2], [0.5, 0.5]), lexical], [0.5, 0.5], "z-score")
    flat_scores = dict(zip(flat.rows.tolist(), flat.scores.tolist(), strict=True))
    assert flat_scores[3] == pytest.approx(0.5 * 1.2247449, rel=1e-5)
    assert flat_scores[1] == flat_scores[2] == pytest.approx(0.5 * low_lexical, rel=1e-5)


def test_normalization_is_checked_and_stored_only_when_not_min_max() -> None:
    z = FusionConfig("convex", weights=(0.4, 0.6), normalization="z-score")
    assert z.to_dict()["normalization"] == "z-score"
    assert FusionConfig.from_dict(z.to_dict()) == z
    assert FusionConfig.stored(z.to_dict()) == z
    # Collections stored before the option read, and write, exactly as they did.
    assert "normalization" not in FusionConfig("convex", weights=(0.4, 0.6)).to_dict()
    with pytest.raises(InputError, match='applies to method = "convex" only'):
        FusionConfig("rrf", normalization="z-score")
    with pytest.raises(InputError, match="unknown 'softmax'; choose min-max or z-score"):
        FusionConfig.from_dict({"method": "convex", "normalization": "softmax"}, source="p.toml")
    with pytest.raises(InputError, match=r"p\.toml: fusion\.normalization must be a string"):
        FusionConfig.from_dict({"method": "convex", "normalization": 1}, source="p.toml")


def test_calibrated_fusion_sums_each_list_on_its_own_scale() -> None:
    from densekit.retrieve.ranking import ScoreScale

    # Dense: 2 deviations above random documents; BM25: half the query's terms.
    dense = Ranking(np.array([1, 2]), np.array([0.5, 0.3], np.float32), ScoreScale(0.1, 0.2))
    bm25 = Ranking(np.array([2, 3]), np.array([5.0, 2.0], np.float32), ScoreScale(0.0, 10.0))
    fused = FusionConfig("calibrated").fuse([dense, bm25], ["dense", "bm25"])
    scores = dict(zip(fused.rows.tolist(), fused.scores.tolist(), strict=True))
    # BM25's top stands 0.5 above its tenth (none: 0), past the ramp: its highest weight.
    # Missing from a list: that list's lowest calibrated score there (dense 1.0, BM25 0.2).
    w = BM25_WEIGHT.high
    expected = {1: 2.0 + w * 0.2, 2: 1.0 + w * 0.5, 3: 1.0 + w * 0.2}
    assert scores == pytest.approx(expected)
    assert fused.rows.tolist() == [2, 1, 3]
    # Given weights replace the per-retriever ones; other names weigh 1.
    config = FusionConfig("calibrated", weights=(1.0, 1.0))
    assert config.fuse([dense, bm25]).rows.tolist()[0] == 1  # 2.0 + 0.2 against 1.0 + 0.5
    assert FusionConfig("calibrated").weights_for(2, ["dense", "mine"]) == (1.0, 1.0)
    with pytest.raises(InputError, match='"convex" or "calibrated"'):
        FusionConfig("rrf", weights=(1.0, 1.0))


def test_a_list_without_a_scale_is_calibrated_by_its_own_z_scores() -> None:
    plain = ranking([1, 2, 3], [3.0, 2.0, 1.0])
    fused = FusionConfig("calibrated", weights=(1.0,)).fuse([plain], ["x"])
    np.testing.assert_allclose(fused.scores, [1.2247449, 0.0, -1.2247449], rtol=1e-6)


def test_shares_say_how_far_each_list_could_move_a_document() -> None:
    from densekit.retrieve.ranking import ScoreScale

    # Dense spans 1 deviation (weight 1), BM25 a quarter of the query (its top stands out:
    # its highest weight).
    dense = Ranking(np.array([1, 2]), np.array([0.5, 0.3], np.float32), ScoreScale(0.0, 0.2))
    bm25 = Ranking(np.array([2, 3]), np.array([5.0, 2.5], np.float32), ScoreScale(0.0, 10.0))
    shares = FusionConfig("calibrated").shares([dense, bm25], ["dense", "bm25"])
    reach = BM25_WEIGHT.high / 4
    assert shares == pytest.approx([1 / (1 + reach), reach / (1 + reach)])
    # Convex min-max: the weights themselves; RRF: lists alike when equally long.
    assert FusionConfig.hybrid("convex", 0.4).shares([dense, bm25]) == pytest.approx([0.4, 0.6])
    assert FusionConfig("rrf").shares([dense, bm25]) == pytest.approx([0.5, 0.5])
    # A list of one candidate cannot move anything.
    lone = ranking([9], [1.0])
    assert FusionConfig.hybrid("convex", 0.4).shares([lone, bm25]) == pytest.approx([0.0, 1.0])


def test_bm25_weighs_more_the_more_its_top_stands_above_its_tenth() -> None:
    from densekit.retrieve.ranking import ScoreScale

    def bm25(gap: float) -> Ranking:  # ten candidates, the tenth at 0.05 of the ceiling
        scores = np.array([0.05 + gap, *np.linspace(0.05 + gap / 2, 0.05, 9)], np.float32)
        return Ranking(np.arange(10), scores, ScoreScale(0.0, 1.0))

    low, high, start, ramp = BM25_WEIGHT.low, BM25_WEIGHT.high, BM25_WEIGHT.start, BM25_WEIGHT.ramp
    assert low < high
    assert BM25_WEIGHT(bm25(start / 2)) == pytest.approx(low)  # flat
    assert BM25_WEIGHT(bm25(start + ramp / 2)) == pytest.approx((low + high) / 2, rel=1e-5)
    assert BM25_WEIGHT(bm25(start + ramp * 2)) == pytest.approx(high)  # stands out
    assert BM25_WEIGHT(Ranking(np.empty(0, np.int64), np.empty(0, np.float32))) == low
    # A fixed weight replaces the per-query one.
    fixed = FusionConfig("calibrated", weights=(1.0, 16.0))
    assert fixed.weights_for(2, ["dense", "bm25"], [bm25(0.9), bm25(0.9)]) == (1.0, 16.0)
