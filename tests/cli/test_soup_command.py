"""`densekit soup` as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from test_cli import run_cli


def test_soup_averages_and_refuses_other_architectures(capsys, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    folders = []
    for name, value in (("a", 1.0), ("b", 3.0)):
        folder = tmp_path / name
        folder.mkdir()
        save_file({"w": torch.full((2,), value)}, str(folder / "model.safetensors"))
        folders.append(folder)
    code, out, err = run_cli(capsys, "soup", *folders, "--out", tmp_path / "soup", "--json")
    assert code == 0, err
    assert json.loads(out)["used"] == [str(f) for f in folders]
    assert load_file(str(tmp_path / "soup" / "model.safetensors"))["w"].tolist() == [2.0, 2.0]
    save_file({"w": torch.zeros(3)}, str(folders[1] / "model.safetensors"))
    code, _, err = run_cli(capsys, "soup", *folders, "--out", tmp_path / "s2")
    assert code == 2 and "one architecture" in err and "Traceback" not in err
