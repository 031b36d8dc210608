"""What a run leaves beside its checkpoint, and the state `--resume` needs: progress and RNG states."""

from __future__ import annotations

import datetime
import json
import platform
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dermseg_deploy.evaluation.pairs import Pair
from dermseg_deploy.evaluation.val_split import split_val_halves
from dermseg_deploy.model.checkpoint import Checkpoint, atomic_torch_save, check_plain
from dermseg_deploy.util.atomic import atomic_write_bytes
from dermseg_deploy.version import __version__

TRAINING_STATE_KEY = "training_state"
"""The key of `model.last.pt` that holds progress, optimiser, scheduler, scaler and RNG states."""


@dataclass
class Progress:
    """Where a run stands; saved in `model.last.pt` so that `--resume` continues from here."""

    stage_index: int = 0
    epochs_done_in_stage: int = 0
    epochs_done: int = 0
    global_step: int = 0
    best_jaccard: float = -1.0
    steps_done_in_epoch: int = 0
    """Steps of the current epoch already taken (non-zero only in a run stopped mid-epoch)."""
    cpu_seconds: float = 0.0
    """CPU time of every session of the run so far: all its processes, data loaders included."""
    wall_seconds: float = 0.0
    """Wall time of every session of the run so far (not the time between sessions)."""


def rng_state() -> dict[str, Any]:
    """RNG states as tensors and lists (what `weights_only` loading accepts)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _plain(random.getstate())}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (tuple, list)) else value


def provenance(config: dict[str, Any], world_size: int, val_ids: list[str], precision: str,
               cpu: dict[str, Any]) -> dict[str, Any]:
    """Where a checkpoint came from: versions, time, the run's config, its processes and validation ids, the
    precision it trained in and the CPU it ran on (`util.cpu.cpu_record`)."""
    return {
        "dermseg_version": __version__,
        "torch_version": str(torch.__version__),
        "python": platform.python_version(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "config": config,
        "world_size": world_size,
        "val_ids": val_ids,
        "precision": precision,
        "cpu": cpu,
    }


def save_resumable(path: Path, checkpoint: Checkpoint, progress: Progress, optimizer: torch.optim.Optimizer,
                   scheduler: torch.optim.lr_scheduler.LRScheduler, scaler: torch.amp.GradScaler,
                   extra_state: dict[str, Any] | None = None) -> None:
    """`model.last.pt`: the checkpoint plus everything `--resume` needs (with `extra_state`, such as the weight
    average), atomically, plain types only."""
    data = checkpoint.to_dict()
    data[TRAINING_STATE_KEY] = {
        "progress": vars(progress).copy(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        **(extra_state or {}),
    }
    check_plain(data)
    atomic_torch_save(data, path)


def write_split(path: Path, seed: int, train: Sequence[Pair], val: Sequence[Pair], excluded: Sequence[str] = (),
                exclusion_lists: Sequence[str] = ()) -> None:
    """model.split.json: the training and validation ids, the validation halves, and the ids left out of training by
    the exclusion lists (with the lists' paths)."""
    val_ids = [p.image_id for p in val]
    split = {"seed": seed, "train": [p.image_id for p in train], "val": val_ids, **split_val_halves(val_ids, seed),
             "excluded_from_training": list(excluded), "exclusion_lists": list(exclusion_lists)}
    atomic_write_bytes(path, json.dumps(split, indent=1).encode())
