"""Reranker and LLM training settings from TOML files, like the bi-encoder's recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.errors import InputError
from densekit.train import LlmConfig, MiningConfig, MultiViewTraining, RerankerConfig


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_reranker_settings_fill_their_tables_and_keep_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[training]\nepochs = 1\nlearning_rate = 3e-5\n[mining]\nnegatives = 4\nranks = [2, 20]\n",
    )
    config = RerankerConfig.from_toml(path, "data", "collection", tmp_path / "out")
    assert config.settings.epochs == 1 and config.settings.learning_rate == 3e-5
    assert config.settings.batch == 4  # not in the file: the default
    assert config.settings.mining == MiningConfig(negatives=4, ranks=(2, 20))
    assert (config.dataset, config.collection) == ("data", "collection")


def test_mvp_settings_are_the_training_table_with_kind_mvp(tmp_path: Path) -> None:
    path = write(tmp_path, '[training]\nkind = "mvp"\nviews = 8\n[mining]\nranks = [1, 40]\n')
    settings = RerankerConfig.from_toml(path, "d", "c", tmp_path / "o").settings
    assert isinstance(settings, MultiViewTraining)
    assert (settings.views, settings.negatives, settings.mining.ranks) == (8, 7, (1, 40))
    with pytest.raises(InputError, match="kind: unknown 'colbert'; choose one of cross-encoder"):
        RerankerConfig.from_toml(write(tmp_path, '[training]\nkind = "colbert"\n'), "d", "c", "o")
    with pytest.raises(InputError, match="unknown key 'views'"):
        RerankerConfig.from_toml(write(tmp_path, "[training]\nviews = 8\n"), "d", "c", "o")


def test_llm_settings_read_training_lora_and_mining(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "[training]\ngrl_weight = 0.5\nbatch = 2\n[lora]\nrank = 4\ntargets = ['q_proj']\n"
        "[mining]\nnegatives = 1\n",
    )
    config = LlmConfig.from_toml(path, "data", tmp_path / "out", merged=False)
    assert config.training.grl_weight == 0.5 and config.training.batch == 2
    assert config.training.lora.rank == 4 and config.training.lora.targets == ("q_proj",)
    assert config.mining.negatives == 1 and config.merged is False


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[trainnig]\nepochs = 1\n", "unknown key 'trainnig'"),
        ("[training]\nepocs = 1\n", "[training]: unknown key 'epocs'"),
        ("[training]\nlearning_rate = 'fast'\n", "learning_rate must be a number"),
        ("[mining]\nranks = 3\n", "ranks must be a list"),
    ],
)
def test_mistakes_name_the_file_and_the_table(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    for load in (
        lambda: RerankerConfig.from_toml(path, "d", "c", tmp_path / "o"),
        lambda: LlmConfig.from_toml(path, "d", tmp_path / "o"),
    ):
        with pytest.raises(InputError) as error:
            load()
        assert str(path) in str(error.value) and message in str(error.value)
