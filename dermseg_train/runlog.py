"""Per-epoch metrics: a JSONL file beside the checkpoint, and TensorBoard when it is installed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class RunLog:
    """Appends one JSON object per line; mirrors numeric fields to TensorBoard if available."""

    def __init__(self, path: Path, tensorboard: bool = True) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer: Any = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                self._writer = None
            else:
                self._writer = SummaryWriter(str(path.with_suffix("")) + ".tensorboard")

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as handle:
            handle.write(json.dumps(record, sort_keys=True) + "\n")
            handle.flush()
        if self._writer is not None:
            step = int(record.get("global_step", 0))
            for key, value in _flatten(record).items():
                if isinstance(value, (int, float)) and key != "global_step":
                    self._writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat |= _flatten(value, f"{name}/")
        else:
            flat[name] = value
    return flat


def read_log(path: Path) -> list[dict[str, Any]]:
    """Every record: epochs, and the events `started`, `resumed`, `stopped` and `diverged` (a key each)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_epochs(path: Path) -> list[dict[str, Any]]:
    """The records of finished epochs, in order."""
    return [record for record in read_log(path) if "epoch" in record]
