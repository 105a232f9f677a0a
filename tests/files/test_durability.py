"""Publishing a folder atomically: the old one or the new one, whatever happens."""

from __future__ import annotations

from pathlib import Path

import pytest

from densekit.files.durability import publish_folder


def write(text: str):
    def fill(folder: Path) -> None:
        (folder / "file.txt").write_text(text)

    return fill


def test_a_failed_write_keeps_the_old_folder_and_no_staging(tmp_path: Path) -> None:
    out = tmp_path / "model"
    publish_folder(out, write("old"))

    def broken(folder: Path) -> None:
        (folder / "file.txt").write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        publish_folder(out, broken)
    assert (out / "file.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_crash_between_the_renames_is_repaired_by_the_next_call(tmp_path: Path) -> None:
    out = tmp_path / "model"
    publish_folder(out, write("old"))
    out.rename(tmp_path / ".model.previous")  # as if killed after moving the old one aside
    publish_folder(out, write("new"))
    assert (out / "file.txt").read_text() == "new"
    assert not (tmp_path / ".model.previous").exists()
