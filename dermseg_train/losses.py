"""The training loss: BCEWithLogits (the paper's), optionally plus soft Dice."""

from __future__ import annotations

import torch
from torch import nn


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    probabilities = torch.sigmoid(logits.float())
    intersection = (probabilities * masks).sum(dim=(1, 2, 3))
    denominator = probabilities.sum(dim=(1, 2, 3)) + masks.sum(dim=(1, 2, 3))
    return (1 - (2 * intersection + 1) / (denominator + 1)).mean()


class SegmentationLoss(nn.Module):
    """BCEWithLogits, plus `dice_weight` x soft Dice when asked for."""

    def __init__(self, dice_weight: float = 0.0) -> None:
        super().__init__()
        self.bce = nn.BCEWithLogitsLoss()
        self.dice_weight = dice_weight

    def forward(self, logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = self.bce(logits.float(), masks)
        return loss + self.dice_weight * soft_dice_loss(logits, masks) if self.dice_weight else loss
