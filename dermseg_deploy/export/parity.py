"""Compare two backends' logits and masks on the same inputs; the result says pass or fail."""

from __future__ import annotations

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
class ParityReport:
    """Max |logit difference| and per-image mask IoU between a reference and a candidate."""

    reference: str
    candidate: str
    max_abs_logit_diff: float
    max_abs_reference_logit: float
    ious: tuple[float, ...]
    atol: float
    min_iou: float

    @property
    def worst_iou(self) -> float:
        return min(self.ious) if self.ious else 1.0

    @property
    def mean_iou(self) -> float:
        return sum(self.ious) / len(self.ious) if self.ious else 1.0

    @property
    def passed(self) -> bool:
        return self.max_abs_logit_diff <= self.atol and self.worst_iou >= self.min_iou

    def summary(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (
            f"parity {self.candidate} vs {self.reference} on {len(self.ious)} images: "
            f"max |logit diff| {self.max_abs_logit_diff:.3g} (tolerance {self.atol:g}; "
            f"largest |logit| {self.max_abs_reference_logit:.3g}), "
            f"worst mask IoU {self.worst_iou:.6f} (required {self.min_iou:g}): {verdict}"
        )


def compare_logits(
    reference: torch.Tensor,
    candidate: torch.Tensor,
    logit_threshold: float,
    atol: float,
    min_iou: float,
    reference_name: str = "pytorch",
    candidate_name: str = "onnxruntime",
) -> ParityReport:
    """Compare (N,1,H,W) logits: the absolute difference everywhere and the masks image by image."""
    if reference.shape != candidate.shape:
        raise ValueError(f"logit shapes differ: {tuple(reference.shape)} vs {tuple(candidate.shape)}")
    reference, candidate = reference.float().cpu(), candidate.float().cpu()
    finite = bool(torch.isfinite(candidate).all() and torch.isfinite(reference).all())
    diff = float((reference - candidate).abs().max().item()) if finite else float("inf")
    ious = tuple(
        mask_iou(r > logit_threshold, c > logit_threshold) for r, c in zip(reference, candidate)
    )
    peak = float(reference.abs().max().item()) if finite else float("inf")
    return ParityReport(reference_name, candidate_name, diff, peak, ious, atol, min_iou)
