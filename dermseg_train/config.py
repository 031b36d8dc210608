"""Training configuration: stages of progressive resizing and everything else, from a JSON file and flags."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dermseg_deploy.errors import UserError
from dermseg_deploy.model.model_config import ModelConfig
from dermseg_deploy.model.sizes import SIZE_RULE, is_valid_size
from dermseg_deploy.util.bounded_json import read_bounded_json_file

from .exclusions import HELDOUT_IDS

PAPER_LRS_512 = (1e-4, 1e-3, 1e-2)
PAPER_LRS_1024 = (5e-4, 5e-3, 5e-2)
DEFAULT_LRS_1024 = (5e-5, 5e-4, 5e-3)
"""The paper's 1024 rates diverged (loss NaN at the one-cycle peak, benchmarks/results/gpu-h100-2026-11-26);
a tenth of them is the default, and `--paper-1024-lrs` brings the paper's back."""


def default_lrs(size_px: int) -> tuple[float, float, float]:
    """The paper's 512 rates below 1024 px; a tenth of the paper's 1024 rates at 1024 px and up."""
    return DEFAULT_LRS_1024 if size_px >= 1024 else PAPER_LRS_512


SCHEDULES = ("one-cycle", "constant")


def check_decay(decay: float) -> float:
    """A weight-average decay in (0, 1), as a float (0, which turns averaging off, is the caller's case)."""
    if not 0.0 < float(decay) < 1.0:
        raise UserError(f"EMA decay {decay}: must lie strictly between 0 and 1 (0 turns averaging off)")
    return float(decay)


@dataclass
class StageConfig:
    """One stage of progressive resizing: a training size, its epochs (or steps), rates and batch size."""

    size_px: int
    epochs: int = 1
    steps: int | None = None
    """If set, the stage ends after this many optimiser steps (as many epochs as that takes)."""
    lrs: tuple[float, float, float] | None = None
    """Peak rates of the early-encoder, late-encoder and decoder groups (default: `default_lrs(size_px)`)."""
    batch_size: int = 8
    freeze_epochs: int = 0
    """Epochs at the start of the stage during which the encoder is frozen."""
    schedule: str = "one-cycle"
    """one-cycle: the rates rise to the peak and anneal to nearly 0 by the stage's end (fastai's fit_one_cycle).
    constant: a linear warm-up over `warmup_epochs`, then the peak rates to the end, so that every epoch's weight
    average is a valid result of a shorter run (`ema_decay`)."""
    warmup_epochs: float = 0.5
    """Warm-up of the constant schedule, in epochs (the one-cycle schedule has its own)."""

    def __post_init__(self) -> None:
        if not is_valid_size(self.size_px):
            raise UserError(f"stage size {self.size_px}: {SIZE_RULE}")
        if self.schedule not in SCHEDULES:
            raise UserError(f"stage at {self.size_px} px: schedule {self.schedule!r} must be one of {', '.join(SCHEDULES)}")
        if self.warmup_epochs < 0:
            raise UserError(f"stage at {self.size_px} px: warmup_epochs must be >= 0")
        if self.epochs < 1 or (self.steps is not None and self.steps < 1) or self.batch_size < 1:
            raise UserError(f"stage at {self.size_px} px: epochs, steps and batch size must be positive")
        if self.lrs is not None:
            lrs = tuple(float(v) for v in self.lrs)
            if len(lrs) != 3 or any(v <= 0 for v in lrs):
                raise UserError(f"stage at {self.size_px} px: lrs must be three positive numbers")
            self.lrs = (lrs[0], lrs[1], lrs[2])

    @property
    def peak_lrs(self) -> tuple[float, float, float]:
        return self.lrs or default_lrs(self.size_px)


SCRATCH_LRS = (1e-3, 1e-3, 3e-3)
"""Peak rates for an encoder trained from random weights (higher than the paper's, which assume ImageNet's)."""
SCRATCH_128_LRS = (5e-4, 5e-4, 1.5e-3)
"""The 128 px stage's peak rates: half the first stage's, for a model that has already learned at 64 px."""

PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "scratch": {
        "encoder_weights": "none",
        "exclude": [str(HELDOUT_IDS)],
        "dice_weight": 1.0,
        "val_every": 100,
        "stages": [{"size_px": 64, "epochs": 6, "batch_size": 8, "lrs": list(SCRATCH_LRS)},
                   {"size_px": 128, "epochs": 4, "batch_size": 8, "lrs": list(SCRATCH_128_LRS)}],
    },
    "long": {
        "encoder_weights": "none",
        "exclude": [str(HELDOUT_IDS)],
        "dice_weight": 1.0,
        "validate_on": "selection",
        "ema_decay": 0.999,
        "val_every": 1,
        "log_scores_every": 2,
        "budget_hours": 8.0,
        "stages": [{"size_px": 64, "epochs": 8, "batch_size": 8, "lrs": list(SCRATCH_LRS), "schedule": "constant"},
                   {"size_px": 128, "epochs": 60, "batch_size": 8, "lrs": list(SCRATCH_128_LRS),
                    "schedule": "constant"}],
    },
}
"""`dermseg-train --preset`: `paper` is TrainConfig's defaults (the paper's recipe, for an ImageNet-pretrained
encoder); `scratch` is the recipe measured best for random encoder weights within 30 minutes on 2 CPU cores for
1500 images with BF16 autocast (benchmarks/results/accuracy-2026-12-06/): 6 epochs at 64 px, then 4 at 128 px with
half the rates, each a one-cycle stage, BCE + soft Dice; the model runs at 128 px. Against 16 epochs at 64 px in the
same time it scores higher on the reporting half and at full resolution, most on borders there (the selection
half preferred the 64 px run, within its noise). Epochs are scored at the end of each
stage only (`val_every`). It never trains on the full-resolution ISIC 2017 images or the shipped samples
(`HELDOUT_IDS`).

`long` is the shipped model's recipe: hours on 2 CPU cores instead of 30 minutes. 8 epochs at 64 px, then up to 60
at 128 px, within a budget of 8 wall-hours (`budget_hours`: the run ends after the epoch that spends it; in FP32 on
2 cores of an AMD Zen 3 that is about 23 epochs at 128 px, in BF16 on a Zen 4 all 60 in about 5 hours). The scratch
preset's peak rates are held constant after a half-epoch warm-up, and an exponential moving average of the weights
(decay 0.999: about 5 epochs) is what is validated, kept and exported. With constant rates every epoch's average is
what a run stopped there would have given, so the learning curve says what a shorter run buys and the length needs
no pilot runs to be fixed. Epochs are scored on the selection half; every 2 epochs (and at each stage's end) the
reporting half and the `log_scores_on` folders are scored too, for the curve only. A config file and flags given on
the command line override a preset."""


def preset_values(name: str) -> dict[str, Any]:
    """A fresh copy of a preset's TrainConfig fields."""
    if name not in PRESETS:
        raise UserError(f"preset {name!r}: must be one of {', '.join(PRESETS)}")
    return json.loads(json.dumps(PRESETS[name]))


def default_stages() -> list[StageConfig]:
    """The paper's progressive resizing: 512 px, then 1024 px."""
    return [StageConfig(512, epochs=10, batch_size=8), StageConfig(1024, epochs=5, batch_size=4)]


@dataclass
class TrainConfig:
    """Everything a run needs; saved in every checkpoint it writes."""

    data: str
    out: str
    stages: list[StageConfig] = field(default_factory=default_stages)
    val_count: int | None = None
    val_fraction: float | None = None
    seed: int = 0
    encoder_weights: str = "imagenet"
    workers: int = 2
    device: str = "auto"
    dice_weight: float = 0.0
    max_rotation_deg: float = 10.0
    lighting: float = 0.2
    cache_dir: str | None = None
    """Resize cache folder; None means `.dermseg-cache` beside the output checkpoint."""
    cache: bool = True
    exclude: list[str] = field(default_factory=list)
    """Files of image ids never trained on (`exclusions`); recorded in model.split.json."""
    deterministic: bool = False
    val_every: int = 1
    validate_on: str = "all"
    """Which validation images score the epochs and pick the best one: all, or the selection half only (so that
    the reporting half stays unseen while settings are chosen; `dermseg-eval --half`)."""
    ema_decay: float = 0.0
    """Decay of the weight average that is validated, kept as the best checkpoint and exported (0: none)."""
    ema_bn_images: int = 128
    """Training images on which the average's BatchNorm statistics are measured before it is validated or saved."""
    log_scores_every: int = 0
    """Every N epochs (and at each stage's end) also score the reporting half and `log_scores_on`, with and without
    the average, for the log only: those scores never choose an epoch (0: never)."""
    log_scores_on: list[str] = field(default_factory=list)
    budget_hours: float = 0.0
    """The run ends after the epoch during which its wall time (over all its sessions) reaches this (0: no budget),
    as if that were the last epoch: it is validated and scored. Meant for constant-rate stages (`schedule`)."""
    """Folders of labelled pairs scored at `log_scores_every` (for example the full-resolution ISIC 2017 images)."""
    eval_batch_size: int = 8
    amp: bool = True
    channels_last: bool = True
    model: dict[str, Any] = field(default_factory=lambda: ModelConfig().to_dict())

    def __post_init__(self) -> None:
        self.stages = [s if isinstance(s, StageConfig) else StageConfig(**s) for s in self.stages]
        if not self.stages:
            raise UserError("the configuration has no training stage")
        if self.val_fraction is not None and not 0.0 < self.val_fraction < 1.0:
            raise UserError(f"val_fraction {self.val_fraction} must lie strictly between 0 and 1")
        if self.dice_weight < 0 or self.val_every < 1:
            raise UserError("dice_weight must be >= 0 and val_every >= 1")
        if self.validate_on not in ("all", "selection"):
            raise UserError(f"validate_on = {self.validate_on!r}: must be all or selection")
        if self.ema_decay:
            check_decay(self.ema_decay)
        if self.log_scores_every < 0 or self.budget_hours < 0 or self.ema_bn_images < 1:
            raise UserError("log_scores_every and budget_hours must be >= 0")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for stage in data["stages"]:
            if stage["lrs"] is not None:
                stage["lrs"] = list(stage["lrs"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown training config keys: {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise UserError(f"bad training config: {exc}") from exc


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a JSON config file (keys as TrainConfig's fields)."""
    data = read_bounded_json_file(path)
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a JSON object")
    return data
