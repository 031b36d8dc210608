"""How a mask is made from the model: test-time augmentation and lesion post-processing, one setting for every
entry point (`dermseg-run`, `dermseg-eval`, `dermseg-bench`, `dermseg-serve`, Ray, the Python API)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError

TTA_VIEWS = {"none": 1, "flips": 4, "dihedral": 8}
"""Test-time augmentation modes and how many views each runs through the model."""

POSTPROCESS_STEPS = ("largest", "fill-holes")
"""Lesion post-processing steps, in the order they are applied whatever order they are asked in."""

TTA_HELP = ("Test-time augmentation: none; flips (4 views: as is, mirrored left-right, up-down, both); dihedral "
            "(8 views: flips and 90-degree turns). Logits are averaged in the original orientation; costs that many "
            "inferences per image.")
POSTPROCESS_HELP = ("Lesion post-processing at network resolution, comma-separated: largest (keep the largest "
                    "connected region), fill-holes (fill background enclosed by lesion), or none. An empty mask stays "
                    "empty; a gap that reaches the image border is not a hole.")


@dataclass(frozen=True)
class MaskOptions:
    """`tta`: a key of TTA_VIEWS; `postprocess`: steps of POSTPROCESS_STEPS (kept in that order)."""

    tta: str = "none"
    postprocess: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.tta not in TTA_VIEWS:
            raise UserError(f"tta = {self.tta!r}: must be one of {', '.join(TTA_VIEWS)}")
        unknown = [step for step in self.postprocess if step not in POSTPROCESS_STEPS]
        if unknown:
            raise UserError(f"postprocess = {','.join(unknown)!r}: steps are {', '.join(POSTPROCESS_STEPS)} (or none)")
        object.__setattr__(self, "postprocess", tuple(s for s in POSTPROCESS_STEPS if s in self.postprocess))

    @classmethod
    def parse(cls, tta: str = "none", postprocess: str | None = None) -> MaskOptions:
        """From command-line text: `postprocess` is comma-separated (`largest,fill-holes`), `none` or empty."""
        steps = [part.strip() for part in (postprocess or "").split(",") if part.strip()]
        if steps == ["none"]:
            steps = []
        return cls(tta, tuple(steps))

    @property
    def views(self) -> int:
        return TTA_VIEWS[self.tta]

    @property
    def plain(self) -> bool:
        return self.tta == "none" and not self.postprocess

    def describe(self) -> str:
        """`tta flips, postprocess largest+fill-holes` (`plain` when neither is on)."""
        if self.plain:
            return "plain"
        parts = [] if self.tta == "none" else [f"tta {self.tta}"]
        if self.postprocess:
            parts.append("postprocess " + "+".join(self.postprocess))
        return ", ".join(parts)
