"""The architecture settings stored in a checkpoint, checked strictly (no torch needed to read them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .schema import refuse, require_bool, require_equal_int, require_known_keys, require_mapping, require_str

ARCHITECTURE = "resnet34_unet"
ENCODER_CHANNELS: tuple[int, ...] = (64, 64, 128, 256, 512)
"""Channels of the encoder activations at strides 2, 4, 8, 16 and 32 (the decoder reads these)."""


@dataclass(frozen=True)
class ModelConfig:
    """Architecture settings; stored in the checkpoint so that the model can be rebuilt."""

    architecture: str = ARCHITECTURE
    in_channels: int = 3
    out_channels: int = 1
    last_cross: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> ModelConfig:
        """Rebuild from a checkpoint's `model_config`, refusing (ModelFileError) anything this code cannot build."""
        data = require_mapping(data, "model_config")
        require_known_keys(data, "model_config", set(cls.__dataclass_fields__))
        architecture = require_str(data.get("architecture", ARCHITECTURE), "model_config.architecture", 256)
        if architecture != ARCHITECTURE:
            raise refuse("model_config.architecture", architecture, f"this dermseg builds only {ARCHITECTURE!r}")
        return cls(
            architecture=architecture,
            in_channels=require_equal_int(data.get("in_channels", 3), "model_config.in_channels", 3,
                                          "the ResNet34 encoder takes RGB"),
            out_channels=require_equal_int(data.get("out_channels", 1), "model_config.out_channels", 1,
                                           "one lesion logit per pixel"),
            last_cross=require_bool(data.get("last_cross", True), "model_config.last_cross"),
        )
