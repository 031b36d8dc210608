"""The `model.pt` checkpoint: a dict of plain types and tensors, loadable with `weights_only=True`.

Keys: `format_version`, `model_config`, `metadata` (the input spec), `state_dict`, `metrics`,
`provenance`. Saved atomically; loaded strictly.
"""

from __future__ import annotations

import pickle
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import ModelFileError
from ..util.atomic import atomic_open
from .metadata import ModelMetadata
from .model_config import ModelConfig
from .network import ResNet34UNet
from .schema import refuse, require_equal_int, require_mapping

CHECKPOINT_FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_config", "metadata", "state_dict")
INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
"""Integer tensors a state dict may hold (BatchNorm's `num_batches_tracked` is int64)."""


@dataclass
class Checkpoint:
    """The content of a `model.pt` file."""

    model_config: dict[str, Any]
    metadata: ModelMetadata
    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "model_config": dict(self.model_config),
            "metadata": self.metadata.to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()},
            "metrics": dict(self.metrics),
            "provenance": dict(self.provenance),
            **self.extra,
        }


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """`torch.save` to a temp file in the same folder, then rename over `path`."""
    with atomic_open(path) as handle:
        torch.save(obj, handle)


PLAIN_TYPES = (str, int, float, bool, type(None), torch.Tensor)


def check_plain(value: Any, where: str = "checkpoint") -> None:
    """Raise TypeError unless `value` holds only dicts, lists, tuples, plain scalars and tensors.

    Subclasses (such as torch's TorchVersion string) would make `weights_only` loading refuse the file.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            check_plain(key, where)
            check_plain(item, f"{where}[{key!r}]")
    elif type(value) in (list, tuple):
        for index, item in enumerate(value):
            check_plain(item, f"{where}[{index}]")
    elif type(value) not in PLAIN_TYPES and not isinstance(value, torch.Tensor):
        raise TypeError(f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, not a plain type")


def save_checkpoint(checkpoint: Checkpoint, path: str | Path) -> None:
    """Write `checkpoint` to `path` atomically; only plain types and tensors are accepted."""
    data = checkpoint.to_dict()
    check_plain(data)
    atomic_torch_save(data, path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint with `weights_only=True`; raise ModelFileError with the reason on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # pickle protocol notes
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", str(exc), re.IGNORECASE)
        if refused is None:
            raise ModelFileError(
                f"{path}: not a readable checkpoint (corrupt, not a PyTorch file, or content that "
                "weights_only loading refuses)"
            ) from exc
        detail = f"it names {refused.group(1)}"
        raise ModelFileError(
            f"{path}: refused to load: it holds objects other than plain types and tensors, which could run "
            f"code when unpickled ({detail}); only load checkpoints written by dermseg-train"
        ) from exc
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, AttributeError) as exc:  # torch's own file errors
        raise ModelFileError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(raw, dict):
        raise ModelFileError(f"{path}: not a dermseg checkpoint (found {type(raw).__name__}, expected a dict)")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ModelFileError(f"{path}: not a dermseg checkpoint (missing keys {missing})")
    try:
        return checkpoint_from_dict(raw)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: {exc}") from exc


def checkpoint_from_dict(raw: dict[Any, Any]) -> Checkpoint:
    """Check every field of a loaded checkpoint dict (types, the architecture, finite weights), then wrap it."""
    require_mapping(raw, "checkpoint")
    require_equal_int(raw["format_version"], "format_version", CHECKPOINT_FORMAT_VERSION,
                      f"this dermseg reads checkpoint format {CHECKPOINT_FORMAT_VERSION}")
    ModelConfig.from_dict(raw["model_config"])
    metadata = ModelMetadata.from_dict(raw["metadata"])
    state_dict = require_weights(raw["state_dict"])
    known = {"format_version", "model_config", "metadata", "state_dict", "metrics", "provenance"}
    return Checkpoint(
        model_config=dict(raw["model_config"]),
        metadata=metadata,
        state_dict=state_dict,
        metrics=dict(require_mapping(raw.get("metrics", {}), "metrics")),
        provenance=dict(require_mapping(raw.get("provenance", {}), "provenance")),
        extra={k: v for k, v in raw.items() if k not in known},
    )


def require_weights(value: Any) -> dict[str, torch.Tensor]:
    """`state_dict`: names to tensors, all of them finite (a NaN or inf weight gives every mask the same answer)."""
    weights = require_mapping(value, "state_dict")
    for name, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor):
            raise refuse(f"state_dict[{name!r}]", tensor, f"must be a tensor, found a {type(tensor).__name__}")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ModelFileError(f"state_dict[{name!r}] holds non-finite values (NaN or inf): the weights are corrupt")
        if not (tensor.is_floating_point() or tensor.dtype in INTEGER_DTYPES):
            raise refuse(f"state_dict[{name!r}]", tensor.dtype, "must be a floating-point or integer tensor")
    return dict(weights)


def load_state_dict_strict(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load every key, exactly; a mismatch raises ModelFileError naming the keys."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = sorted(
        f"{k} {tuple(state_dict[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(state_dict)
        if tuple(state_dict[k].shape) != tuple(expected[k].shape)
    )
    wrong_kind = sorted(
        f"{k} {state_dict[k].dtype} for {expected[k].dtype}"
        for k in set(expected) & set(state_dict)
        if state_dict[k].is_floating_point() != expected[k].is_floating_point()
    )
    if missing or unexpected or wrong_shape or wrong_kind:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape),
                            ("wrong dtype", wrong_kind)):
            if keys:
                more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
                parts.append(f"{label} keys {keys[:5]}{more}")
        raise ModelFileError(f"{source}: weights do not match the model: {'; '.join(parts)}")
    model.load_state_dict(state_dict, strict=True)


def model_from_checkpoint(checkpoint: Checkpoint, source: str = "checkpoint") -> ResNet34UNet:
    """Rebuild the network of a checkpoint and load its weights strictly (eval mode)."""
    try:
        config = ModelConfig.from_dict(checkpoint.model_config)
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: {exc}") from exc
    model = ResNet34UNet(config)
    load_state_dict_strict(model, checkpoint.state_dict, source)
    return model.eval()
