"""Mixed precision in training: BF16 autocast on a CPU with native BF16 units, FP32 elsewhere, announced; a BF16 run
resumes to the same weights and its loss tracks FP32's. The CPU's BF16 detection is replaced, so both branches run on
any CPU (BF16 autocast itself runs everywhere, emulated where the units are missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_deploy.samples import SAMPLES_DIR
from dermseg_deploy.util import cpu
from dermseg_train import cli
from dermseg_train.config import StageConfig, TrainConfig
from dermseg_train.precision import training_precision
from dermseg_train.runlog import read_epochs
from dermseg_train.train import Trainer, last_checkpoint_path, log_path


def _config(out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = dict(
        data=str(SAMPLES_DIR), out=str(out / "model.pt"), val_count=2, encoder_weights="none", workers=0,
        device="cpu", deterministic=True, stages=[StageConfig(32, epochs=2, batch_size=2, lrs=(1e-3, 1e-3, 1e-3))],
        cache_dir=str(out.parent / "cache"),
    )
    return TrainConfig(**(values | overrides))


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)


def test_the_precision_follows_the_hardware_and_the_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)
    assert training_precision(True, torch.device("cpu")).autocast_dtype == torch.bfloat16
    assert not training_precision(True, torch.device("cpu")).uses_scaler
    assert training_precision(False, torch.device("cpu")).autocast_dtype is None
    assert training_precision(True, torch.device("cuda")).uses_scaler
    monkeypatch.setattr(cpu, "native_bf16", lambda: False)
    fallback = training_precision(True, torch.device("cpu"))
    assert fallback.autocast_dtype is None and "no native BF16 units" in fallback.describe()


@pytest.mark.parametrize(("native", "said"), [(True, "precision: bf16 autocast"), (False, "precision: fp32 (this cpu has")])
def test_the_trainer_announces_its_precision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, native: bool,
                                             said: str) -> None:
    monkeypatch.setattr(cpu, "native_bf16", lambda: native)
    out = tmp_path / "model.pt"
    args = ["--data", SAMPLES_DIR, "--out", out, "--size", "64", "--steps", "1", "--batch-size", "2",
            "--encoder-weights", "none", "--workers", "0", "--val-count", "2", "--device", "cpu", "--quiet"]
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert said in result.stderr
    assert read_epochs(log_path(out))[0]["precision"] == ("bf16" if native else "fp32")


def _losses(config: TrainConfig) -> list[float]:
    losses: list[float] = []
    Trainer(config, lambda kind, info: losses.append(info["loss"]) if kind == "step" else None).run()
    return losses


@pytest.mark.slow
def test_a_bf16_run_tracks_the_fp32_run_on_the_same_seed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)
    stages = [StageConfig(32, epochs=3, batch_size=2, lrs=(1e-3, 1e-3, 1e-3))]
    bf16 = _losses(_config(tmp_path / "bf16", stages=stages))
    fp32 = _losses(_config(tmp_path / "fp32", stages=stages, amp=False))
    assert len(bf16) == len(fp32) == 9
    assert bf16 != fp32  # BF16 really ran
    first_epoch = [abs(a - b) / b for a, b in zip(bf16[:3], fp32[:3])]
    assert max(first_epoch) < 0.01, first_epoch  # the same steps, rounded: BF16 keeps 8 bits of mantissa
    mean_bf16, mean_fp32 = sum(bf16[-3:]) / 3, sum(fp32[-3:]) / 3  # later, rounding differences have compounded
    assert abs(mean_bf16 - mean_fp32) / mean_fp32 < 0.05, (bf16, fp32)


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_a_bf16_run_killed_mid_epoch_and_resumed_ends_with_the_same_weights(tmp_path: Path, bf16_cpu: None) -> None:
    Trainer(_config(tmp_path / "whole")).run()

    def kill_in_second_epoch(kind: str, info: dict[str, Any]) -> None:
        if kind == "step" and info["global_step"] == 5:  # 6 training images, batch 2: 3 steps per epoch
            raise _Killed()

    cut = tmp_path / "cut"
    with pytest.raises(_Killed):
        Trainer(_config(cut), kill_in_second_epoch).run()
    Trainer(_config(cut)).run(resume=last_checkpoint_path(cut / "model.pt"))
    expected = load_checkpoint(last_checkpoint_path(tmp_path / "whole" / "model.pt")).state_dict
    resumed = load_checkpoint(last_checkpoint_path(cut / "model.pt")).state_dict
    assert [k for k in expected if not torch.equal(expected[k], resumed[k])] == []
    assert {r["precision"] for r in read_epochs(log_path(cut / "model.pt"))} == {"bf16"}
