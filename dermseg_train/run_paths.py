"""The files a training run writes beside its `--out` checkpoint."""

from __future__ import annotations

from pathlib import Path


def last_checkpoint_path(out: str | Path) -> Path:
    """`model.pt` -> `model.last.pt` (resumable)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.last{out.suffix}")


def log_path(out: str | Path) -> Path:
    """`model.pt` -> `model.log.jsonl` (one line per epoch, and per start, resume, stop or divergence)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.log.jsonl")


def split_path(out: str | Path) -> Path:
    """`model.pt` -> `model.split.json` (the training and validation ids)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.split.json")
