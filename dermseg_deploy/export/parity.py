"""Compare two backends' logits and masks on the same inputs; a check's report says pass or fail itself."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def mask_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    """IoU of two boolean masks; two empty masks count as 1."""
    a, b = a.bool(), b.bool()
    union = int((a | b).sum().item())
    if union == 0:
        return 1.0
    return int((a & b).sum().item()) / union


@dataclass(frozen=True)
class LogitComparison:
    """Max |logit difference| and per-image mask IoU between a reference and a candidate (no verdict)."""

    reference: str
    candidate: str
    max_abs_logit_diff: float
    max_abs_reference_logit: float
    ious: tuple[float, ...]

    @property
    def worst_iou(self) -> float:
        return min(self.ious) if self.ious else 1.0

    @property
    def mean_iou(self) -> float:
        return sum(self.ious) / len(self.ious) if self.ious else 1.0

    @property
    def finite(self) -> bool:
        return math.isfinite(self.max_abs_logit_diff)

    def describe(self) -> str:
        return (f"{self.candidate} vs {self.reference} on {len(self.ious)} images: max |logit diff| "
                f"{self.max_abs_logit_diff:.3g} (largest |logit| {self.max_abs_reference_logit:.3g}), mask IoU mean "
                f"{self.mean_iou:.6f}, worst {self.worst_iou:.6f}")


def compare_logits(
    reference: torch.Tensor, candidate: torch.Tensor, logit_threshold: float, reference_name: str = "pytorch",
    candidate_name: str = "onnxruntime",
) -> LogitComparison:
    """Compare (N,1,H,W) logits: the absolute difference everywhere and the masks image by image."""
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {tuple(reference.shape)} vs {tuple(candidate.shape)}")
    reference, candidate = reference.float().cpu(), candidate.float().cpu()
    finite = bool(torch.isfinite(candidate).all() and torch.isfinite(reference).all())
    diff = float((reference - candidate).abs().max().item()) if finite else float("inf")
    ious = tuple(mask_iou(r > logit_threshold, c > logit_threshold) for r, c in zip(reference, candidate))
    peak = float(reference.abs().max().item()) if finite else float("inf")
    return LogitComparison(reference_name, candidate_name, diff, peak, ious)


@dataclass(frozen=True)
class ParityReport:
    """A comparison judged against its tolerances: finite logits, max |diff| <= atol, worst and mean mask IoU."""

    comparison: LogitComparison
    atol: float = math.inf
    min_worst_iou: float = 0.0
    min_mean_iou: float = 0.0

    @property
    def passed(self) -> bool:
        c = self.comparison
        return (c.finite and c.max_abs_logit_diff <= self.atol and c.worst_iou >= self.min_worst_iou
                and c.mean_iou >= self.min_mean_iou)

    def requirements(self) -> str:
        parts = ["finite logits"]
        if math.isfinite(self.atol):
            parts.append(f"max |logit diff| <= {self.atol:g}")
        if self.min_worst_iou > 0:
            parts.append(f"worst mask IoU >= {self.min_worst_iou:g}")
        if self.min_mean_iou > 0:
            parts.append(f"mean mask IoU >= {self.min_mean_iou:g}")
        return ", ".join(parts)

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return f"parity {self.comparison.describe()}; required {self.requirements()}: {verdict}"
