"""`densekit mine-negatives` then `densekit train --triplets`, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from required import require
from test_cli import judged_static_collection, run_cli

require("datasets")


def test_mine_then_train_on_the_triplets(capsys, tiny_beir: Path, tmp_path: Path) -> None:
    collection, triplets = tmp_path / "c", tmp_path / "triplets.jsonl"
    judged_static_collection(capsys, tiny_beir, collection)
    mine = ["mine-negatives", tiny_beir, "--collection", collection, "--out", triplets]
    code, out, err = run_cli(capsys, *mine, "--ranks", "1:4", "--negatives", "2", "--margin", "0")
    assert code == 0 and "2 rows for 2 queries" in out, err
    rows = [json.loads(line) for line in triplets.read_text().splitlines()]
    assert [row["query_id"] for row in rows] == ["q1", "q2"]
    assert all(len(row["negatives"]) == 2 for row in rows)

    model = tmp_path / "model"
    code, out, err = run_cli(
        capsys, "train", "--triplets", triplets, "--out", model, "--batch", "2", "--quiet"
    )
    assert code == 0 and "2 rows" in out, err
    assert (model / "densekit_training.json").exists()

    code, _, err = run_cli(capsys, *mine)
    assert code == 2 and "pass --overwrite" in err
    code, _, err = run_cli(capsys, *mine, "--overwrite", "--ranks", "5:2")
    assert code == 2 and "data.ranks must be [first, last]" in err and "Traceback" not in err
    with pytest.raises(SystemExit) as exit_status:
        run_cli(capsys, *mine, "--ranks", "2-5")
    assert exit_status.value.code == 2 and "expected FIRST:LAST ranks" in capsys.readouterr().err


def test_the_flags_make_the_same_mining_config_as_a_recipe(
    capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from densekit.train import pairs
    from densekit.train.mining import MiningConfig
    from densekit.train.recipe import Recipe

    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        '[data]\nnegatives = 2\nranks = [5, 40]\nretrievers = ["dense"]\nmargin = 0.9\n',
        encoding="utf-8",
    )
    seen: list[MiningConfig] = []

    def capture(*args: object, **options: object) -> pairs.MinedTriplets:
        seen.append(args[3])  # type: ignore[arg-type]
        return pairs.MinedTriplets("o", 0, 0, 0)

    monkeypatch.setattr(pairs, "mine_triplets", capture)
    mine = ["mine-negatives", "d", "--collection", "c", "--out", "o"]
    flags = ["--negatives", "2", "--ranks", "5:40", "--retrievers", "dense", "--margin", "0.9"]
    assert run_cli(capsys, *mine, *flags)[0] == 0
    assert run_cli(capsys, *mine, "--margin", "0")[0] == 0
    assert seen == [Recipe.from_toml(recipe).data, MiningConfig(margin=None)]
