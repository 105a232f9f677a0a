"""Resumable training runs: checkpoints kept in a hidden folder beside the output, with the
run's description, so the same command after an interruption resumes from the latest whole
checkpoint, and a different run is refused until it asks to restart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from densekit.errors import InputError
from densekit.files.durability import atomic_write_text

RUN_FILE = "densekit_run.json"


def prepare_checkpoints(folder: Path, run: dict[str, Any], restart: bool) -> str | None:
    """The checkpoint to resume from, if an earlier run of this very training left one."""
    run = json.loads(json.dumps(run))  # as read back: tuples become lists
    recorded = folder / RUN_FILE
    found = sorted(
        (p for p in folder.glob("checkpoint-*") if complete_checkpoint(p)),
        key=lambda p: int(p.name.split("-")[-1]),
    )
    if folder.exists() and (restart or not recorded.exists() or not found):
        shutil.rmtree(folder)  # nothing worth resuming, or asked to start over
    if folder.exists():
        if json.loads(recorded.read_text()) != run:
            raise InputError(
                f"{folder} holds checkpoints of a training with another recipe, data or base; "
                "pass --restart to discard them and start over"
            )
        return str(found[-1])
    folder.mkdir(parents=True)
    atomic_write_text(recorded, json.dumps(run, indent=2, sort_keys=True))
    return None


def complete_checkpoint(checkpoint: Path) -> bool:
    """Whole once its trainer state (written last) reads back and the weights and optimizer
    state are there; one cut short by an interruption is passed over."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    has_weights = any(checkpoint.glob("*.safetensors")) or any(checkpoint.glob("*.bin"))
    return has_weights and (checkpoint / "optimizer.pt").exists()
