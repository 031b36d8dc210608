"""The naive baseline of `dermseg-bench` (`naive:model.pt`): PIL decode and resize, the model in PyTorch eager FP32,
PIL nearest upsample and PNG write, one image at a time with no overlap. Needs torch (the `train` extra)."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from ..core.image_formats import ALLOWED_FORMATS
from ..model.metadata import ModelMetadata
from ..util.devices import Device
from .measure import STAGES, StageTimer
from .settings import BenchSettings
from .stats import summarize_ms


class NaiveBaseline:
    """PIL decode and resize, the model in PyTorch eager FP32, PIL nearest upsample and PNG write; one image at a time."""

    def __init__(self, model: torch.nn.Module, metadata: ModelMetadata, device: Device) -> None:
        self.device = device.to_torch()
        self.model = model.to(self.device).float().eval()
        self.metadata = metadata
        self.timer = StageTimer(device)

    @torch.inference_mode()
    def run_one(self, path: Path, out_path: Path) -> dict[str, float]:
        metadata, size = self.metadata, self.metadata.size_px
        begin = time.perf_counter()
        data = path.read_bytes()
        read_ms = (time.perf_counter() - begin) * 1000.0
        begin = time.perf_counter()
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)).convert("RGB")
        decode_ms = (time.perf_counter() - begin) * 1000.0
        begin = time.perf_counter()
        small = np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        x = (small - np.array(metadata.mean, np.float32)) / np.array(metadata.std, np.float32)
        tensor = torch.from_numpy(x).permute(2, 0, 1)[None].contiguous().to(self.device)
        preprocess_ms = (time.perf_counter() - begin) * 1000.0
        logits, inference_ms = self.timer(lambda: self.model(tensor))
        begin = time.perf_counter()
        mask = ((logits[0, 0] > metadata.logit_threshold).to(torch.uint8) * 255).cpu().numpy()
        full = Image.fromarray(mask).resize(image.size, Image.Resampling.NEAREST)
        postprocess_ms = (time.perf_counter() - begin) * 1000.0
        begin = time.perf_counter()
        full.save(out_path, format="PNG")
        write_ms = (time.perf_counter() - begin) * 1000.0
        return dict(zip(STAGES, (read_ms, decode_ms, preprocess_ms, inference_ms, postprocess_ms, write_ms)))

    def measure(
        self, images: list[Path], settings: BenchSettings, out_dir: Path, on_image: Callable[[], None] = lambda: None,
    ) -> tuple[dict[str, dict[str, float]], float, int]:
        """Stage latencies (per image), and images/s over whole passes after one warm-up image."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.run_one(images[0], out_dir / "warmup.png")
        samples: dict[str, list[float]] = {stage: [] for stage in STAGES}
        done, started = 0, time.perf_counter()
        while True:
            for path in images:
                for stage, value in self.run_one(path, out_dir / f"{path.stem}_segmentation.png").items():
                    samples[stage].append(value)
                done += 1
                on_image()
            elapsed = time.perf_counter() - started
            if settings.done(done, elapsed):
                return {stage: summarize_ms(v) for stage, v in samples.items()}, done / elapsed, done
