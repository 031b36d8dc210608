"""How a plan is built; plain data, so the CLI can describe a build without importing TensorRT."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UserError
from .batch_profile import BatchProfile
from .sidecar import HARDWARE_LEVELS


@dataclass(frozen=True)
class BuildOptions:
    """The batch profile, the workspace limit, the optimisation level (0-5), compatibility flags."""

    profile: BatchProfile = field(default_factory=BatchProfile)
    workspace_bytes: int = 4 << 30
    optimization_level: int = 3
    version_compatible: bool = False
    hardware_compatibility: str = "none"

    def __post_init__(self) -> None:
        if self.hardware_compatibility not in HARDWARE_LEVELS:
            raise UserError(f"hardware compatibility {self.hardware_compatibility!r}: use one of {', '.join(HARDWARE_LEVELS)}")
        if not 0 <= self.optimization_level <= 5:
            raise UserError(f"optimisation level {self.optimization_level}: use 0 to 5")
