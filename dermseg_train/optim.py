"""Discriminative learning rates over three layer groups, and freezing the encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from dermseg_deploy.model.network import ResNet34UNet

from .config import StageConfig


def layer_groups(model: ResNet34UNet) -> list[list[nn.Parameter]]:
    """Three parameter groups for discriminative learning rates: early encoder, late encoder, decoder."""
    enc = model.encoder
    early = [*enc.stem.parameters(), *enc.layer1.parameters(), *enc.layer2.parameters()]
    late = [*enc.layer3.parameters(), *enc.layer4.parameters()]
    encoder_ids = {id(p) for p in enc.parameters()}
    decoder = [p for p in model.parameters() if id(p) not in encoder_ids]
    return [early, late, decoder]


def make_optimizer(model: ResNet34UNet, lrs: Sequence[float]) -> torch.optim.Adam:
    """Adam over the three layer groups (early encoder, late encoder, decoder) with their own rates."""
    return torch.optim.Adam([{"params": g, "lr": lr} for g, lr in zip(layer_groups(model), lrs)])


def make_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig, total_steps: int,
                   steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler:
    """The stage's schedule, stepped once per optimiser step: one-cycle to `total_steps`, or constant rates after a
    linear warm-up of `stage.warmup_epochs` (the peak from then on, however long the stage runs)."""
    peaks = list(stage.peak_lrs)
    if stage.schedule == "one-cycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=total_steps)
    warmup_steps = max(1, round(stage.warmup_epochs * steps_per_epoch))
    for group, peak in zip(optimizer.param_groups, peaks):
        group["lr"] = peak
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup_steps))


def encoder_frozen(model: ResNet34UNet) -> bool:
    return not any(p.requires_grad for p in model.encoder.parameters())


def set_encoder_frozen(model: ResNet34UNet, frozen: bool) -> None:
    for parameter in model.encoder.parameters():
        parameter.requires_grad_(not frozen)
