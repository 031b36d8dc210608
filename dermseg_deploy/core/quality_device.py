"""`core.quality`'s signals on a CUDA device (torch): the same definitions, computed where the logits are, so that only
three numbers per image come back to the host (a test holds the two to 1e-3)."""

from __future__ import annotations

import math

import torch

from .quality import EMPTY_CENTRE_DISTANCE, EMPTY_LOG_COMPACTNESS


def device_signals(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N, 1, S, S) logits and their (N, 1, S, S) final 0/1 masks -> (N, 3) float64 signals, on their device."""
    count, size = logits.shape[0], logits.shape[-1]
    probability = torch.sigmoid(logits.reshape(count, size, size).float()).double()
    mask = masks.reshape(count, size, size).bool()
    inside = mask.flatten(1).sum(dim=1).double()
    agreement = (probability * mask).flatten(1).sum(dim=1)
    union = probability.flatten(1).sum(dim=1) + inside - agreement
    soft = torch.where(union > 0, agreement / union.clamp_min(1e-300), torch.ones_like(union))
    centre = (torch.arange(size, device=logits.device, dtype=torch.float64) + 0.5) / size - 0.5
    rows = (mask.sum(dim=2).double() * centre).sum(dim=1) / inside.clamp_min(1.0)
    cols = (mask.sum(dim=1).double() * centre).sum(dim=1) / inside.clamp_min(1.0)
    distance = torch.where(inside > 0, torch.hypot(rows, cols), torch.full_like(rows, EMPTY_CENTRE_DISTANCE))
    padded = torch.nn.functional.pad(mask, (1, 1, 1, 1))
    interior = padded[:, :-2, 1:-1] & padded[:, 2:, 1:-1] & padded[:, 1:-1, :-2] & padded[:, 1:-1, 2:] & mask
    perimeter = (mask & ~interior).flatten(1).sum(dim=1).double()
    compact = torch.where(inside > 0, torch.log(perimeter.clamp_min(1.0) ** 2 / (4 * math.pi * inside.clamp_min(1.0))),
                          torch.full_like(inside, EMPTY_LOG_COMPACTNESS))
    return torch.stack([soft, distance, compact], dim=1)
