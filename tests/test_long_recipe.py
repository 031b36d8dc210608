"""The long recipe's parts: the weight average (EMA), a SIGTERM stop and resume that ends where the uninterrupted run
does (average included), CPU and wall time across sessions, the precision-change refusal, the wall-time budget, the
logged scores of the learning curve, and benchmarks/long_run.sh's status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner
from torch import nn

from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_deploy.samples import SAMPLES_DIR
from dermseg_deploy.util import cpu
from dermseg_deploy.util.stop_signals import StopFlag
from dermseg_train import cli
from dermseg_train.config import StageConfig, TrainConfig, preset_values
from dermseg_train.ema import WeightAverage, recalibrate_batchnorm
from dermseg_train.precision import PrecisionChangeError
from dermseg_train.run_state import TRAINING_STATE_KEY
from dermseg_train.runlog import read_epochs, read_log
from dermseg_train.train import Trainer, TrainingStopped, last_checkpoint_path, log_path

ROOT = Path(__file__).resolve().parents[1]
STEPS_PER_EPOCH = 3  # 6 training images of the 8 samples (2 validate), batch 2


def _config(out: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = dict(
        data=str(SAMPLES_DIR), out=str(out / "model.pt"), val_count=2, encoder_weights="none", workers=0,
        device="cpu", deterministic=True, amp=False, ema_decay=0.9, cache_dir=str(out.parent / "cache"),
        stages=[StageConfig(64, epochs=2, batch_size=2, lrs=(1e-3, 1e-3, 1e-3), schedule="constant")],
    )
    return TrainConfig(**(values | overrides))


def test_the_weight_average_is_the_hand_computed_average_and_copies_buffers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    average = WeightAverage(model, decay=0.75)
    history = []
    for _ in range(4):
        optimizer.zero_grad()
        model(torch.randn(5, 3)).square().mean().backward()
        optimizer.step()
        average.update(model)
        history.append([p.detach().double().clone() for p in model.parameters()])
    assert average.updates == 4
    shares = [0.75 ** (4 - i) for i in range(1, 5)]  # step i's share: decay^(n-i), normalised; none for the initial weights
    expected = [sum(s * h[j] for s, h in zip(shares, history)) / sum(shares) for j in range(len(history[0]))]
    for averaged, by_hand in zip(average.model.parameters(), expected):
        assert torch.allclose(averaged.double(), by_hand, atol=1e-7, rtol=0)
    assert not all(torch.allclose(a, p) for a, p in zip(average.model.parameters(), model.parameters()))  # not a copy
    assert all(torch.equal(a, b) for a, b in zip(average.model.buffers(), model.buffers()))  # BN statistics copied
    assert not average.model.training and not any(p.requires_grad for p in average.model.parameters())


def test_the_average_s_batchnorm_statistics_are_measured_for_its_own_weights() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    batches = [torch.randn(2, 3, 8, 8) * 3 + 1 for _ in range(3)]
    assert recalibrate_batchnorm(model, batches, torch.device("cpu"), channels_last=False) == 6
    features = [model[0](b).detach() for b in batches]
    norm = model[1]
    assert torch.allclose(norm.running_mean, torch.cat(features).mean(dim=(0, 2, 3)), atol=1e-5)  # exact, not moving
    batch_vars = torch.stack([f.var(dim=(0, 2, 3)) for f in features])  # BatchNorm's own: each batch's, averaged
    assert torch.allclose(norm.running_var, batch_vars.mean(dim=0), rtol=1e-4)
    assert norm.momentum == 0.1 and model.training


def _stop_by_sigterm_at(step: int) -> tuple[StopFlag, Any]:
    """A StopFlag as dermseg-train installs it, and an event callback that sends this process SIGTERM at `step`."""
    flag = StopFlag()

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind == "step" and info["global_step"] == step:
            os.kill(os.getpid(), signal.SIGTERM)

    return flag, on_event


@pytest.mark.slow
def test_a_run_stopped_by_sigterm_and_resumed_equals_the_uninterrupted_run_average_included(tmp_path: Path) -> None:
    whole = _config(tmp_path / "whole", val_every=100)  # scored at the end only: model.pt is the last average
    Trainer(whole).run()
    cut = _config(tmp_path / "cut", val_every=100)
    flag, on_event = _stop_by_sigterm_at(STEPS_PER_EPOCH + 2)  # mid-way through the second epoch
    with flag.installed(), pytest.raises(TrainingStopped):
        Trainer(cut, on_event, flag.is_set).run()
    stopped = load_checkpoint(last_checkpoint_path(cut.out)).extra[TRAINING_STATE_KEY]
    assert stopped["progress"]["global_step"] == STEPS_PER_EPOCH + 2 and stopped["ema"]["updates"] == STEPS_PER_EPOCH + 2
    before = stopped["progress"]["cpu_seconds"], stopped["progress"]["wall_seconds"]
    assert before[0] > 0 and before[1] > 0
    Trainer(cut).run(resume=last_checkpoint_path(cut.out))

    for name in ("model.pt", "model.last.pt"):
        expected, resumed = load_checkpoint(Path(whole.out).with_name(name)), load_checkpoint(Path(cut.out).with_name(name))
        assert [k for k in expected.state_dict if not torch.equal(expected.state_dict[k], resumed.state_dict[k])] == []
    expected_ema = load_checkpoint(last_checkpoint_path(whole.out)).extra[TRAINING_STATE_KEY]["ema"]
    resumed_state = load_checkpoint(last_checkpoint_path(cut.out)).extra[TRAINING_STATE_KEY]
    assert resumed_state["ema"]["updates"] == expected_ema["updates"] == 2 * STEPS_PER_EPOCH
    assert all(torch.equal(expected_ema["weights"][k], resumed_state["ema"]["weights"][k]) for k in expected_ema["weights"])

    # model.pt holds the average; model.last.pt the trained weights, with the average beside them
    best, last = load_checkpoint(Path(cut.out)), load_checkpoint(last_checkpoint_path(cut.out))
    assert best.provenance["weights"] == "ema (decay 0.9)" and last.provenance["weights"] == "trained"
    key = "decoder.head.weight" if "decoder.head.weight" in best.state_dict else next(iter(best.state_dict))
    assert torch.equal(best.state_dict[key], resumed_state["ema"]["weights"][key])
    assert not torch.equal(best.state_dict[key], last.state_dict[key])
    assert last.provenance["precision"] == "fp32" and last.provenance["cpu"]["cores"] >= 1

    epochs = read_epochs(log_path(cut.out))
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert epochs[-1]["cpu_seconds"] > before[0] and epochs[-1]["wall_seconds"] > before[1]  # cumulative over sessions
    assert "validation_raw" in epochs[-1] and epochs[-1]["weights"] == "ema"
    assert [list(r) for r in read_log(log_path(cut.out)) if "epoch" not in r][-2:] == [["started"], ["resumed"]]


def test_a_resume_that_would_change_the_precision_refuses_unless_allowed(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpu, "native_bf16", lambda: True)
    config = _config(tmp_path, amp=True, stages=[StageConfig(64, steps=2, batch_size=2)])
    flag, on_event = _stop_by_sigterm_at(1)
    with flag.installed(), pytest.raises(TrainingStopped):
        Trainer(config, on_event, flag.is_set).run()
    last = last_checkpoint_path(config.out)
    assert load_checkpoint(last).provenance["precision"] == "bf16"

    monkeypatch.setattr(cpu, "native_bf16", lambda: False)  # the same run, continued on a CPU without BF16 units
    args = ["--data", SAMPLES_DIR, "--out", config.out, "--size", "64", "--steps", "2", "--batch-size", "2",
            "--encoder-weights", "none", "--workers", "0", "--val-count", "2", "--device", "cpu", "--ema", "0.9",
            "--cache-dir", config.cache_dir, "--resume", last, "-q"]
    refused = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert refused.exit_code == 2, refused.output
    assert "trained in bf16" in refused.stderr and "--allow-precision-change" in refused.stderr
    assert "Traceback" not in refused.output
    with pytest.raises(PrecisionChangeError):
        Trainer(TrainConfig.from_dict(config.to_dict())).run(resume=last)

    allowed = CliRunner().invoke(cli.main, [str(a) for a in args] + ["--allow-precision-change"])
    assert allowed.exit_code == 0, allowed.output
    assert "the precision changes from bf16" in allowed.stderr
    change = [r["resumed"] for r in read_log(log_path(config.out)) if "resumed" in r][-1]["precision_change"]
    assert (change["from"], change["to"]) == ("bf16", "fp32")


def test_the_budget_ends_the_run_scored_with_the_logged_sets(tmp_path: Path) -> None:
    config = _config(tmp_path, val_count=4, validate_on="selection", budget_hours=1e-9, log_scores_every=5,
                     log_scores_on=[str(SAMPLES_DIR)], stages=[StageConfig(64, epochs=3, batch_size=2, schedule="constant")])
    Trainer(config).run()
    epochs = read_epochs(log_path(config.out))
    assert len(epochs) == 1 and epochs[0]["ended_by_budget"] == {"budget_hours": 1e-9}
    logged = epochs[0]["logged_scores"]  # the last epoch is always scored, whatever log_scores_every says
    assert set(logged) == {"reporting", "samples"} and set(logged["samples"]) == {"ema", "raw"}
    assert logged["reporting"]["raw"]["images"] == 2 and logged["samples"]["ema"]["images"] == 8
    with pytest.raises(Exception, match="spent its budget"):
        Trainer(config).run(resume=last_checkpoint_path(config.out))


def test_the_long_preset_and_the_ema_flag() -> None:
    values = preset_values("long")
    config = TrainConfig.from_dict(values | {"data": "d", "out": "o"})
    assert config.ema_decay == 0.999 and config.validate_on == "selection" and config.budget_hours == 8.0
    assert [(s.size_px, s.schedule) for s in config.stages] == [(64, "constant"), (128, "constant")]
    with pytest.raises(Exception, match="strictly between 0 and 1"):
        TrainConfig.from_dict(values | {"data": "d", "out": "o", "ema_decay": 1.5})


def _status(run_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ROOT / "benchmarks" / "long_run.sh"), "status"], capture_output=True, text=True,
                          env=os.environ | {"DERMSEG_LONG_RUN_DIR": str(run_dir)}, timeout=60)


def test_long_run_status_reports_epoch_cpu_hours_score_and_eta(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    config = preset_values("long")
    scores = {"all": {"jaccard": 0.81234, "thresholded_jaccard": 0.7512}}
    lines = [{"started": {"config": config, "resume": None}}]
    for epoch in range(1, 10):  # 8 at 64 px of 600 s each, then one at 128 px of 1800 s
        size, stage = (64, 0) if epoch <= 8 else (128, 1)
        lines.append({"epoch": epoch, "stage": stage, "size_px": size, "epoch_in_stage": epoch if stage == 0 else 1,
                      "cpu_seconds": 1200.0 * epoch, "wall_seconds": 600.0 * min(epoch, 8) + 1800.0 * (epoch > 8),
                      "validation": scores, "validation_raw": scores, "weights": "ema"})
    (run / "model.log.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = _status(run)
    assert result.returncode == 0, result.stderr
    assert "epoch 9 (stage 2 of 2, at 128 px, 1 of 60 in the stage), 3.00 CPU-hours, 1.83 wall-hours" in result.stdout
    assert "jaccard 0.8123, thresholded 0.7512" in result.stdout
    assert "ETA: about 6.2 wall-hours" in result.stdout  # 59 epochs of 30 min, capped by the 8 h budget

    gone = _status(tmp_path / "gone")
    assert gone.returncode == 1 and "no run folder at" in gone.stdout and "resume starts again" in gone.stdout
    again = subprocess.run([str(ROOT / "benchmarks" / "long_run.sh"), "resume"], capture_output=True, text=True,
                           env=os.environ | {"DERMSEG_LONG_RUN_DIR": str(tmp_path / "gone"),
                                             "DERMSEG_DATA": str(tmp_path / "no-data")}, timeout=60)
    assert "no run to resume" in again.stdout and "starting again" in again.stdout
    assert again.returncode == 2 and "not found (set DERMSEG_DATA" in again.stdout  # nothing was started
