"""The lexical bridge (LexSemBridge): e' = normalise(softmax(W w) * d * e), its training on
frozen vectors, its files (saved with a tokenizer), and reading queries' tokens."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import HashingEncoder
from test_adapter_training import mismatched_task, top1
from test_residual import unit_rows

from densekit.adapt import AdapterSpec, AdapterTraining, load_adapter, save_adapter, train_adapter
from densekit.adapt.training import fit_query_map, train_lexsem
from densekit.encode.adapters.lexsem import (
    LexSemBridge,
    LexSemSpec,
    QueryTokens,
    document_frequency_idf,
)
from densekit.encode.adapters.query_tokens import (
    hidden_size_of,
    load_tokenizer,
    read_query_tokens,
    tokenizer_of,
)
from densekit.errors import InputError

STOPWORDS = (2, 3, 4)  # token ids every document holds: an IDF of almost 0
VOCABULARY = 10
HIDDEN = 8


# Tiny maps: one torch thread is fastest, and spares a busy machine.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def minilm_tokenizer():
    """The bundled MiniLM WordPiece tokenizer, which encoders without their own get."""
    return tokenizer_of(HashingEncoder())


def topical_task(seed: int = 0, dimension: int = 32, documents: int = 200, queries: int = 300):
    """Queries that match their document only on their topic's half of the dimensions (the
    other half is noise); the topic is a query token (0 or 1) beside stopwords. The vectors
    alone cannot tell which half to trust, the tokens can: a gate learned from them must help.

    Returns query vectors, token ids, hidden states per token, pairs, the corpus, the corpus IDF.
    """
    rng = np.random.default_rng(seed)
    corpus = unit_rows(documents, dimension, seed)
    topics = rng.integers(0, 2, size=documents)
    targets = rng.integers(0, documents, size=queries)
    half = dimension // 2
    vectors = corpus[targets].copy()
    for row, target in enumerate(targets):
        noisy = slice(half, dimension) if topics[target] == 0 else slice(0, half)
        vectors[row, noisy] += 3.0 * rng.normal(size=half) / np.sqrt(half)
    ids = [np.array([topics[t], *rng.choice(STOPWORDS, size=3)]) for t in targets]
    table = rng.normal(size=(VOCABULARY, HIDDEN)).astype(np.float32)
    hidden = [table[i] for i in ids]
    idf = document_frequency_idf([np.array([t, *STOPWORDS]) for t in topics], VOCABULARY)
    pairs = [(row, int(target)) for row, target in enumerate(targets)]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), ids, hidden, pairs, corpus, idf


def bridge_for(weights: str, dimension: int = 32, idf=None) -> LexSemBridge:
    if idf is None:
        idf = np.linspace(0.5, 2.0, VOCABULARY).astype(np.float32)
    return LexSemBridge(LexSemSpec(weights), VOCABULARY, dimension, idf=idf, hidden_size=HIDDEN)


def randomised(bridge: LexSemBridge, seed: int = 1) -> LexSemBridge:
    """``bridge`` with random (trained-looking) weights, so that it is far from the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in bridge.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return bridge


def tokens_with_hidden(ids: list[list[int]], seed: int = 0) -> QueryTokens:
    rng = np.random.default_rng(seed)
    arrays = [np.asarray(i, dtype=np.int64) for i in ids]
    return QueryTokens(
        arrays, [rng.normal(size=(len(a), HIDDEN)).astype(np.float32) for a in arrays]
    )


def softplus(x: np.ndarray) -> np.ndarray:
    return np.log1p(np.exp(x))


def expected_modulation(bridge: LexSemBridge, vectors: np.ndarray, tokens: QueryTokens):
    """e' computed by hand from the bridge's weights, in numpy."""
    table = bridge.projection.weight.detach().numpy()
    out = []
    for row, ids in enumerate(tokens.ids):
        if bridge.spec.weights == "slr":  # each distinct token once, weighted by its IDF
            present = np.unique(ids)
            weights = bridge.idf.numpy()[present]
        else:  # every occurrence, weighted by softplus(head(hidden state))
            present = ids
            head_w = bridge.head.weight.detach().numpy()[0]
            head_b = float(bridge.head.bias.detach().numpy()[0])
            weights = softplus(tokens.hidden[row] @ head_w + head_b)
        logits = weights @ table[present] if len(present) else np.zeros(bridge.dimension)
        logits = logits * float(getattr(bridge, "scale", 1.0))
        gate = np.exp(logits - logits.max())
        gate = gate / gate.sum() * bridge.dimension
        unit = vectors[row] / np.linalg.norm(vectors[row])
        mapped = gate * unit
        out.append(mapped / np.linalg.norm(mapped))
    return np.stack(out)


# --- LexSemSpec, QueryTokens, IDF ---------------------------------------------------------------


def test_spec_defaults_to_statistical_weights_and_refuses_others() -> None:
    assert LexSemSpec().weights == "slr"
    assert LexSemSpec("llr").to_dict() == {"weights": "llr"}
    with pytest.raises(InputError, match="slr, llr"):
        LexSemSpec("bm25")  # type: ignore[arg-type]


def test_query_tokens_take_rows_with_their_hidden_states() -> None:
    tokens = tokens_with_hidden([[1], [2, 3], [4, 5, 6]])
    taken = tokens.take([2, 0])
    assert len(tokens) == 3 and len(taken) == 2
    assert [list(i) for i in taken.ids] == [[4, 5, 6], [1]]
    assert taken.hidden is not None
    np.testing.assert_array_equal(taken.hidden[0], tokens.hidden[2])
    np.testing.assert_array_equal(taken.hidden[1], tokens.hidden[0])
    assert QueryTokens([np.array([1])]).take([0]).hidden is None


def test_idf_is_bm25s_and_counts_a_document_once_per_token() -> None:
    documents = [np.array([0, 0, 0, 1]), np.array([0, 2]), np.array([0]), np.array([1, 1])]
    idf = document_frequency_idf(documents, 5)
    total = len(documents)

    def bm25(df: int) -> float:
        return math.log(1 + (total - df + 0.5) / (df + 0.5))

    # token 0 is in 3 documents (three times in the first), 1 in 2, 2 in 1, 3 and 4 in none
    np.testing.assert_allclose(idf, [bm25(3), bm25(2), bm25(1), bm25(0), bm25(0)], rtol=1e-6)
    assert idf.dtype == np.float32 and idf.shape == (5,)
    assert idf[0] < idf[1] < idf[2] < idf[3] == idf[4]
    assert (idf > 0).all()  # log(1 + x) never goes negative, unlike the original BM25 IDF


# --- LexSemBridge --------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["slr", "llr"])
def test_an_untrained_bridge_leaves_queries_unchanged(weights) -> None:
    bridge = bridge_for(weights, dimension=16)
    vectors = 3.0 * unit_rows(4, 16)  # any scale: the bridge works on unit vectors
    tokens = tokens_with_hidden([[1, 2, 3], [5, 5], [], [9]])
    np.testing.assert_allclose(bridge.adapt_queries(vectors, tokens), vectors / 3.0, atol=1e-6)


@pytest.mark.parametrize("weights", ["slr", "llr"])
def test_modulation_is_the_normalised_softmax_gate_times_the_vector(weights) -> None:
    bridge = randomised(bridge_for(weights, dimension=6))
    vectors = unit_rows(4, 6, seed=3) * np.array([[1.0], [2.0], [0.5], [7.0]], dtype=np.float32)
    tokens = tokens_with_hidden([[1, 1, 3], [0], [7, 8, 9, 2], [4]])
    adapted = bridge.adapt_queries(vectors, tokens)
    np.testing.assert_allclose(adapted, expected_modulation(bridge, vectors, tokens), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(adapted, axis=1), 1.0, atol=1e-6)
    # A gate scales each dimension by a positive factor: no sign ever flips.
    assert (np.sign(adapted) == np.sign(vectors)).all()
    unchanged = bridge_for(weights, dimension=6).adapt_queries(vectors, tokens)
    assert np.abs(adapted - unchanged).max() > 0.05


def test_statistical_weights_count_each_distinct_token_once_by_its_idf() -> None:
    idf = np.zeros(VOCABULARY, dtype=np.float32)
    idf[[1, 2]] = [1.5, 0.7]
    bridge = randomised(bridge_for("slr", dimension=8, idf=idf))
    vectors = unit_rows(1, 8)
    once = bridge.adapt_queries(vectors, QueryTokens([np.array([1, 2])]))
    repeated = bridge.adapt_queries(vectors, QueryTokens([np.array([2, 1, 1, 1, 2])]))
    np.testing.assert_allclose(once, repeated, atol=1e-6)
    # Tokens of IDF 0 (in every document) carry no weight; an empty query keeps its vector.
    with_common = bridge.adapt_queries(vectors, QueryTokens([np.array([1, 2, 5, 6])]))
    idf_zero_only = bridge.adapt_queries(vectors, QueryTokens([np.array([5, 6, 0])]))
    np.testing.assert_allclose(with_common, once, atol=1e-6)
    np.testing.assert_allclose(idf_zero_only, vectors, atol=1e-6)
    np.testing.assert_allclose(
        bridge.adapt_queries(vectors, QueryTokens([np.array([], dtype=np.int64)])),
        vectors,
        atol=1e-6,
    )
    assert np.abs(once - vectors).max() > 0.05


def test_learned_weights_count_every_occurrence_through_the_head() -> None:
    bridge = randomised(bridge_for("llr", dimension=8))
    vectors = unit_rows(1, 8)
    state = np.ones((1, HIDDEN), dtype=np.float32)
    once = QueryTokens([np.array([3])], [state])
    twice = QueryTokens([np.array([3, 3])], [np.concatenate([state, state])])
    assert (
        np.abs(bridge.adapt_queries(vectors, once) - bridge.adapt_queries(vectors, twice)).max()
        > 1e-3
    )
    # The head reads the hidden state: the same token with another state weighs differently.
    other = QueryTokens([np.array([3])], [-state])
    assert (
        np.abs(bridge.adapt_queries(vectors, once) - bridge.adapt_queries(vectors, other)).max()
        > 1e-3
    )


def test_an_untrained_head_weighs_every_token_one() -> None:
    bridge = bridge_for("llr")
    states = torch.from_numpy(np.random.default_rng(0).normal(size=(5, HIDDEN)).astype(np.float32))
    weights = torch.nn.functional.softplus(bridge.head(states)).squeeze(-1)
    torch.testing.assert_close(weights, torch.ones(5))


def test_parameters_are_w_and_the_head_never_the_idf() -> None:
    slr, llr = bridge_for("slr"), bridge_for("llr")
    assert [tuple(p.shape) for p in slr.parameters()] == [(VOCABULARY, 32)]
    assert [tuple(p.shape) for p in llr.parameters()] == [(VOCABULARY, 32), (1, HIDDEN), (1,)]
    assert slr.head is None and llr.idf is None
    assert not slr.idf.requires_grad


@pytest.mark.parametrize("weights", ["slr", "llr"])
def test_state_round_trips_into_a_fresh_bridge(weights) -> None:
    trained = randomised(bridge_for(weights, dimension=6))
    expected_keys = {"projection.weight"} | (
        {"idf"} if weights == "slr" else {"head.weight", "head.bias"}
    )
    assert expected_keys <= set(trained.state())
    fresh = bridge_for(weights, dimension=6, idf=np.ones(VOCABULARY, dtype=np.float32))
    fresh.load_state({k: v.detach().clone() for k, v in trained.state().items()})
    tokens = tokens_with_hidden([[1, 2], [3, 3, 9], [0]])
    vectors = unit_rows(3, 6)
    np.testing.assert_allclose(
        fresh.adapt_queries(vectors, tokens), trained.adapt_queries(vectors, tokens), atol=1e-6
    )
    if weights == "slr":
        torch.testing.assert_close(fresh.idf, trained.idf)


def test_bad_bridges_and_inputs_raise_input_errors() -> None:
    idf = np.ones(VOCABULARY, dtype=np.float32)
    with pytest.raises(InputError, match="vocabulary and a vector dimension"):
        LexSemBridge(LexSemSpec(), 0, 8, idf=idf[:0])
    with pytest.raises(InputError, match="vocabulary and a vector dimension"):
        LexSemBridge(LexSemSpec(), VOCABULARY, 0, idf=idf)
    with pytest.raises(InputError, match="one IDF value per token"):
        LexSemBridge(LexSemSpec("slr"), VOCABULARY, 8)
    with pytest.raises(InputError, match="one IDF value per token"):
        LexSemBridge(LexSemSpec("slr"), VOCABULARY, 8, idf=idf[:-1])
    with pytest.raises(InputError, match="hidden size"):
        LexSemBridge(LexSemSpec("llr"), VOCABULARY, 8)
    with pytest.raises(InputError, match="hidden size"):
        LexSemBridge(LexSemSpec("llr"), VOCABULARY, 8, hidden_size=0)
    slr, llr = bridge_for("slr", dimension=8), bridge_for("llr", dimension=8)
    tokens = QueryTokens([np.array([1]), np.array([2])])
    with pytest.raises(InputError, match="2 query vectors but 1 token lists"):
        slr.adapt_queries(unit_rows(2, 8), tokens.take([0]))
    with pytest.raises(InputError, match="8-dimensional"):
        slr.adapt_queries(unit_rows(2, 4), tokens)
    with pytest.raises(InputError, match="8-dimensional"):
        slr.adapt_queries(unit_rows(2, 8)[0], tokens)
    with pytest.raises(InputError, match="hidden states"):
        llr.adapt_queries(unit_rows(2, 8), tokens)


# --- training ------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["slr", "llr"])
def test_training_learns_which_dimensions_the_tokens_vouch_for(weights) -> None:
    vectors, ids, hidden, pairs, corpus, idf = topical_task()
    tokens = QueryTokens(ids, hidden if weights == "llr" else None)
    train, held_out = pairs[:250], pairs[250:]
    before = top1(vectors, corpus, held_out)
    bridge = bridge_for(weights, idf=idf)
    frozen = (vectors.copy(), corpus.copy(), idf.copy())
    training = AdapterTraining(epochs=10, batch=32, learning_rate=0.1)
    report = train_lexsem(vectors, tokens, train, corpus, bridge, training)
    after = top1(bridge.adapt_queries(vectors, tokens), corpus, held_out)
    assert after > before + 0.5, (before, after)
    assert report.loss_last_epoch < report.loss_first_epoch
    assert report.pairs == 250 and report.queries == 250 and report.documents == 200
    assert report.steps == 10 * math.ceil(250 / 32)
    assert report.spec == {"weights": weights} and report.training["learning_rate"] == 0.1
    # Only the bridge learns: the vectors, and the corpus statistics, stay as they were.
    for kept, now in zip(frozen, (vectors, corpus, idf), strict=True):
        np.testing.assert_array_equal(kept, now)
    if weights == "slr":
        np.testing.assert_array_equal(bridge.idf.numpy(), idf)
    if weights == "slr":
        # The gain comes from the tokens: telling the bridge the other topic makes it worse
        # than no bridge at all.
        flipped = QueryTokens([np.array([1 - i[0], *i[1:]]) for i in ids])
        assert top1(bridge.adapt_queries(vectors, flipped), corpus, held_out) < before


def test_lexsem_training_is_deterministic_per_seed() -> None:
    vectors, ids, _, pairs, corpus, idf = topical_task()
    tokens = QueryTokens(ids)

    def trained(seed: int) -> np.ndarray:
        bridge = bridge_for("slr", idf=idf)
        training = AdapterTraining(epochs=2, batch=32, learning_rate=0.1, negatives=20, seed=seed)
        train_lexsem(vectors, tokens, pairs, corpus, bridge, training)
        return bridge.projection.weight.detach().numpy().copy()

    np.testing.assert_array_equal(trained(3), trained(3))
    assert not np.array_equal(trained(3), trained(4))


def test_bad_lexsem_training_input_is_named() -> None:
    vectors, ids, _, pairs, corpus, idf = topical_task()
    bridge = bridge_for("slr", idf=idf)
    with pytest.raises(InputError, match="300 query vectors but 299 token lists"):
        train_lexsem(vectors, QueryTokens(ids[:-1]), pairs, corpus, bridge)
    with pytest.raises(InputError, match="pair 0"):
        train_lexsem(vectors, QueryTokens(ids), [(0, 200)], corpus, bridge)
    with pytest.raises(InputError, match="same encoder"):
        train_lexsem(vectors, QueryTokens(ids), pairs, corpus[:, :16], bridge)
    with pytest.raises(InputError, match="hidden states"):
        train_lexsem(vectors, QueryTokens(ids), pairs, corpus, bridge_for("llr"))
    np.testing.assert_array_equal(bridge.projection.weight.detach().numpy(), 0.0)


def test_the_shared_loop_fits_any_query_map() -> None:
    """fit_query_map trains whatever ``adapted`` computes: a plain linear map learns the
    rotation of the mismatched task, with sampled negatives too."""
    queries, pairs, corpus = mismatched_task()
    train, held_out = pairs[:250], pairs[250:]
    linear = torch.nn.Linear(16, 16, bias=False)
    torch.nn.init.eye_(linear.weight)
    query_tensor = torch.from_numpy(queries)
    training = AdapterTraining(epochs=40, batch=32, learning_rate=1e-2, negatives=50)
    report = fit_query_map(
        lambda rows: linear(query_tensor[rows]),
        list(linear.parameters()),
        np.asarray(train),
        corpus,
        training,
    )
    with torch.no_grad():
        mapped = linear(query_tensor).numpy()
    assert top1(mapped, corpus, held_out) > top1(queries, corpus, held_out) + 0.3
    assert report.steps == 40 * math.ceil(250 / 32) and report.loss_last_epoch < 1.0
    assert report.spec == {}  # the callers (train_adapter, train_lexsem) fill it in


def test_the_shared_loop_trains_a_document_map_too() -> None:
    queries, pairs, corpus = mismatched_task()
    adapter, _ = train_adapter(
        queries,
        pairs,
        corpus,
        AdapterSpec(rank=4, sides="separate"),
        AdapterTraining(epochs=2, learning_rate=1e-2),
    )
    assert adapter.document_map is not None
    assert adapter.document_map.up.weight.detach().abs().max() > 0  # it started at zero
    assert np.abs(adapter.adapt_documents(corpus) - corpus).max() > 1e-3


# --- files ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("weights", ["slr", "llr"])
def test_saved_bridges_load_the_same_with_their_tokenizer(
    weights, minilm_tokenizer, tmp_path: Path
) -> None:
    vocabulary = len(minilm_tokenizer)
    idf = np.random.default_rng(0).uniform(0.1, 5.0, size=vocabulary).astype(np.float32)
    bridge = randomised(
        LexSemBridge(LexSemSpec(weights), vocabulary, 16, idf=idf, hidden_size=HIDDEN)
    )
    folder = save_adapter(
        bridge,
        tmp_path / "bridge",
        encoder_fingerprint="enc-1",
        info={"trained": {"pairs": 7}},
        tokenizer=minilm_tokenizer,
    )
    loaded, card = load_adapter(folder, encoder_fingerprint="enc-1")
    assert isinstance(loaded, LexSemBridge)
    assert card["kind"] == "lexsem" and card["spec"] == {"weights": weights}
    assert card["vocabulary"] == vocabulary and card["dimension"] == 16
    assert card["trained"] == {"pairs": 7} and card["encoder_fingerprint"] == "enc-1"
    assert card.get("hidden_size") == (HIDDEN if weights == "llr" else None)
    # The saved tokenizer reads the same ids, so the bridge means the same tokens.
    texts = ["vitamin D deficiency and bones", "loyal dogs love to run"]
    tokenizer = load_tokenizer(folder / "tokenizer")
    tokens = read_query_tokens(texts, tokenizer)
    original = read_query_tokens(texts, minilm_tokenizer)
    for read, expected in zip(tokens.ids, original.ids, strict=True):
        np.testing.assert_array_equal(read, expected)
    if weights == "llr":
        tokens = QueryTokens(tokens.ids, tokens_with_hidden([list(i) for i in tokens.ids]).hidden)
    vectors = unit_rows(2, 16)
    np.testing.assert_allclose(
        loaded.adapt_queries(vectors, tokens), bridge.adapt_queries(vectors, tokens), atol=1e-6
    )
    with pytest.raises(InputError, match="trained on vectors of encoder 'enc-1'"):
        load_adapter(folder, encoder_fingerprint="enc-2")


def test_a_bridge_is_not_saved_without_its_tokenizer(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="tokenizer"):
        save_adapter(bridge_for("slr"), tmp_path / "bridge", encoder_fingerprint="enc")
    assert not (tmp_path / "bridge").exists()


def test_bridge_cards_that_do_not_fit_their_weights_are_refused(
    minilm_tokenizer, tmp_path: Path
) -> None:
    import json

    def saved(weights: str, name: str) -> Path:
        return save_adapter(
            bridge_for(weights, dimension=8),
            tmp_path / name,
            encoder_fingerprint="enc",
            tokenizer=minilm_tokenizer,
        )

    def edit(folder: Path, **changes) -> None:
        card = json.loads((folder / "adapter.json").read_text())
        (folder / "adapter.json").write_text(json.dumps(card | changes))

    unknown = saved("slr", "unknown")
    edit(unknown, kind="mystery")
    with pytest.raises(InputError, match="unknown adapter kind 'mystery'"):
        load_adapter(unknown)
    short_vocabulary = saved("slr", "vocabulary")
    edit(short_vocabulary, vocabulary=VOCABULARY - 1)
    with pytest.raises(InputError, match="unreadable adapter card"):
        load_adapter(short_vocabulary)
    wider_head = saved("llr", "head")
    edit(wider_head, hidden_size=HIDDEN + 1)
    with pytest.raises(InputError, match="weights do not fit the card"):
        load_adapter(wider_head)
    wider = saved("llr", "dimension")
    edit(wider, dimension=9)
    with pytest.raises(InputError, match="weights do not fit the card"):
        load_adapter(wider)


# --- query tokens --------------------------------------------------------------------------------


def test_encoders_without_a_tokenizer_get_the_bundled_minilm_one(minilm_tokenizer) -> None:
    assert len(minilm_tokenizer) == 30522
    assert minilm_tokenizer.convert_tokens_to_ids("[CLS]") == 101
    own = SimpleNamespace(get_vocab=lambda: {"a": 0})
    with_model = SimpleNamespace(model=SimpleNamespace(tokenizer=own))
    assert tokenizer_of(with_model) is own
    assert tokenizer_of(SimpleNamespace(inner=with_model)) is own  # a server's batching wrapper
    # A tokenizer that cannot list its vocabulary cannot size the bridge: MiniLM's instead.
    bare = SimpleNamespace(model=SimpleNamespace(tokenizer=object()))
    assert len(tokenizer_of(bare)) == 30522


def test_query_tokens_leave_out_special_tokens(minilm_tokenizer) -> None:
    texts = ["Vitamin D and bones", "loyal dogs", ""]
    tokens = read_query_tokens(texts, minilm_tokenizer)
    assert tokens.hidden is None and len(tokens) == 3
    assert minilm_tokenizer.convert_ids_to_tokens(tokens.ids[0]) == ["vitamin", "d", "and", "bones"]
    assert all(i.dtype == np.int64 for i in tokens.ids)
    assert len(tokens.ids[2]) == 0
    special = set(minilm_tokenizer.all_special_ids)
    assert not special & {int(t) for ids in tokens.ids for t in ids}


def test_learned_weights_need_an_encoder_with_hidden_states(minilm_tokenizer) -> None:
    with pytest.raises(InputError, match=r"'hashing'.*use statistical weights \(slr\)"):
        read_query_tokens(["q"], minilm_tokenizer, encoder=HashingEncoder(), hidden=True)
    with pytest.raises(InputError, match="slr"):
        read_query_tokens(["q"], minilm_tokenizer, hidden=True)
    with pytest.raises(InputError, match="slr"):
        hidden_size_of(HashingEncoder())


@pytest.fixture(scope="module")
def minilm():
    from densekit.encode import load_encoder

    return load_encoder("minilm")


@pytest.mark.slow
def test_hidden_states_of_the_real_model(minilm) -> None:
    tokenizer = tokenizer_of(minilm)
    assert tokenizer is minilm.model.tokenizer  # the encoder's own, not a second copy
    texts = ["vitamin D deficiency", "do loyal dogs like to run in the park", "x"]
    tokens = read_query_tokens(texts, tokenizer, encoder=minilm, hidden=True)
    plain = read_query_tokens(texts, tokenizer)
    assert hidden_size_of(minilm) == 384
    assert tokens.hidden is not None
    for ids, states, without in zip(tokens.ids, tokens.hidden, plain.ids, strict=True):
        # special tokens kept (every token has a state), padding left out
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        np.testing.assert_array_equal(ids[1:-1], without)
        assert states.shape == (len(ids), 384) and np.isfinite(states).all()
    # Batches do not change what a query reads (padding is masked out).
    one_by_one = read_query_tokens(texts, tokenizer, encoder=minilm, hidden=True, batch=1)
    for a, b in zip(one_by_one.hidden, tokens.hidden, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow
def test_a_learned_bridge_on_the_real_model_starts_as_the_identity(minilm) -> None:
    tokenizer = tokenizer_of(minilm)
    texts = ["vitamin D deficiency", "loyal dogs"]
    tokens = read_query_tokens(texts, tokenizer, encoder=minilm, hidden=True)
    bridge = LexSemBridge(
        LexSemSpec("llr"), len(tokenizer), 384, hidden_size=hidden_size_of(minilm)
    )
    vectors = minilm.encode_queries(texts)
    np.testing.assert_allclose(bridge.adapt_queries(vectors, tokens), vectors, atol=1e-5)
