from __future__ import annotations

from pathlib import Path

import pytest

from densekit.encode import REGISTRY, resolve_model
from densekit.errors import InputError


def test_minilm_resolves_to_the_bundled_weights() -> None:
    spec = resolve_model("minilm")
    assert Path(spec.location, "config.json").is_file()
    assert REGISTRY["minilm"].available_offline


def test_registry_entries_carry_their_prompts() -> None:
    assert resolve_model("e5-small").query_prompt == "query: "
    assert resolve_model("e5-small").document_prompt == "passage: "


def test_paths_and_hub_names_pass_through(tmp_path: Path) -> None:
    assert resolve_model(str(tmp_path)).location == str(tmp_path.resolve())
    assert resolve_model("org/some-model").location == "org/some-model"
    with pytest.raises(InputError, match="does not exist"):
        resolve_model("./no/such/model")
    with pytest.raises(InputError, match="empty model name"):
        resolve_model("")
