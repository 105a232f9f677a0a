from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import unit_rows

from densekit.encode.adapters.residual import (
    KEY_TEMPERATURE,
    AdapterSpec,
    ResidualAdapter,
    residual_map,
)
from densekit.errors import InputError


@pytest.mark.parametrize("form", ["low-rank", "key-value"])
def test_an_untrained_adapter_is_the_identity(form) -> None:
    adapter = ResidualAdapter(AdapterSpec(form=form, rank=8, sides="both"), 16)
    vectors = unit_rows(5, 16)
    np.testing.assert_allclose(adapter.adapt_queries(vectors), vectors, atol=1e-6)
    np.testing.assert_allclose(adapter.adapt_documents(vectors * 3), vectors, atol=1e-6)


def test_low_rank_delta_is_b_a_e_with_rank_at_most_h() -> None:
    module = residual_map("low-rank", 12, 3)
    torch.nn.init.normal_(module.up.weight)
    e = torch.from_numpy(unit_rows(40, 12))
    delta = module(e) - e
    expected = e @ module.down.weight.T @ module.up.weight.T
    torch.testing.assert_close(delta, expected)
    assert torch.linalg.matrix_rank(delta.detach()) <= 3


def test_key_value_delta_is_attention_over_slots() -> None:
    module = residual_map("key-value", 6, 4)
    torch.nn.init.normal_(module.values)
    e = torch.from_numpy(unit_rows(3, 6))
    keys = module.keys / module.keys.norm(dim=-1, keepdim=True)
    weights = torch.softmax(e @ keys.T / KEY_TEMPERATURE, dim=-1)
    torch.testing.assert_close(module(e) - e, weights @ module.values)
    assert torch.allclose(weights.sum(dim=-1), torch.ones(3))


def test_key_value_attention_tells_inputs_apart_at_real_widths() -> None:
    # At d = 384 a query must attend mostly to the slot it is near, not to all slots alike.
    module = residual_map("key-value", 384, 64)
    near_slot = module.keys[:1].detach() / module.keys[:1].detach().norm()
    attention = torch.softmax(
        near_slot @ (module.keys / module.keys.norm(dim=-1, keepdim=True)).T / KEY_TEMPERATURE,
        dim=-1,
    )
    assert attention[0, 0] > 0.9


def test_sides_decide_which_maps_exist() -> None:
    query_only = ResidualAdapter(AdapterSpec(sides="query", rank=2), 8)
    shared = ResidualAdapter(AdapterSpec(sides="both", rank=2), 8)
    separate = ResidualAdapter(AdapterSpec(sides="separate", rank=2), 8)
    assert query_only.document_map is None and len(query_only.modules()) == 1
    assert shared.document_map is shared.query_map and len(shared.modules()) == 1
    assert separate.document_map is not separate.query_map and len(separate.modules()) == 2
    assert set(separate.state()) == {
        "query.down.weight",
        "query.up.weight",
        "document.down.weight",
        "document.up.weight",
    }


def test_bad_specs_and_shapes_are_refused() -> None:
    with pytest.raises(InputError, match="form"):
        AdapterSpec(form="mlp")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="sides"):
        AdapterSpec(sides="documents")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="rank"):
        AdapterSpec(rank=0)
    with pytest.raises(InputError, match="16-dimensional"):
        ResidualAdapter(AdapterSpec(rank=2), 16).adapt_queries(unit_rows(2, 8))
    with pytest.raises(InputError, match="16-dimensional"):
        ResidualAdapter(AdapterSpec(rank=2), 16).adapt_documents(unit_rows(2, 8))
