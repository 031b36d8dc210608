"""The trainer's recipe: augmentation, resize cache, config, resume equivalence, DDP, ISIC scores."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.evaluation.metrics import ImageScore, ScoreTotals, score_image
from dermseg_deploy.evaluation.pairs import discover_pairs
from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_deploy.samples import SAMPLES_DIR
from dermseg_train.augment import augment_pair
from dermseg_train.baselines import centred_ellipse
from dermseg_train.config import DEFAULT_LRS_1024, PAPER_LRS_512, PAPER_LRS_1024, StageConfig, TrainConfig
from dermseg_train.data import ResizeCache
from dermseg_train.encoder_weights import build_model
from dermseg_train.runlog import read_epochs, read_log
from dermseg_train.train import Trainer, last_checkpoint_path, log_path, split_path

ROOT = Path(__file__).resolve().parents[1]


def test_augmentation_moves_image_and_mask_together() -> None:
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    shape = ((yy - 20) ** 2 / 15**2 + (xx - 40) ** 2 / 9**2) <= 1  # an off-centre, asymmetric blob
    image = torch.zeros(3, 64, 64)
    image[0][shape] = 255.0
    mask = shape[None].float()
    for seed in range(16):
        moved_image, moved_mask = augment_pair(image, mask, torch.Generator().manual_seed(seed), 15.0, 0.0)
        red = moved_image[0] > 127.5
        agreement = (red == moved_mask[0].bool()).float().mean().item()
        assert agreement > 0.98, (seed, agreement)
        assert set(moved_mask.unique().tolist()) <= {0.0, 1.0}


def test_augmentation_is_seeded() -> None:
    image, mask = torch.rand(3, 32, 32) * 255, (torch.rand(1, 32, 32) > 0.5).float()
    a = augment_pair(image, mask, torch.Generator().manual_seed(3))
    b = augment_pair(image, mask, torch.Generator().manual_seed(3))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_resize_cache_decodes_once_and_rebuilds_damaged_entries(tmp_path: Path) -> None:
    pair = discover_pairs(SAMPLES_DIR)[0]
    cache = ResizeCache(tmp_path)
    image, mask = cache.load(pair, 64)
    entries = list((tmp_path / "64").glob("*.npz"))
    assert len(entries) == 1 and image.shape == (3, 64, 64) and mask.shape == (1, 64, 64)
    again = cache.load(pair, 64)
    assert torch.equal(again[0], image) and torch.equal(again[1], mask)
    entries[0].write_bytes(b"damaged")
    rebuilt = cache.load(pair, 64)
    assert torch.equal(rebuilt[0], image)
    cache.load(pair, 96)
    assert len(list(tmp_path.rglob("*.npz"))) == 2


def test_thresholded_jaccard_boundary_and_totals() -> None:
    exactly = ImageScore(tp=13, fp=7, fn=0, tn=80)
    assert exactly.jaccard == 0.65 and exactly.thresholded_jaccard == 0.65
    below = ImageScore(tp=64, fp=36, fn=0, tn=0)
    assert below.jaccard == 0.64 and below.thresholded_jaccard == 0.0
    assert ImageScore(0, 0, 0, 10).jaccard == 1.0 and ImageScore(0, 0, 0, 10).dice == 1.0
    score = score_image(np.array([[True, True, False, False]]), np.array([[True, False, True, False]]))
    assert (score.tp, score.fp, score.fn, score.tn) == (1, 1, 1, 1)
    assert score.sensitivity == 0.5 and score.specificity == 0.5 and score.dice == 0.5
    totals = ScoreTotals.empty()
    totals.add(exactly)
    totals.add_failure()
    restored = ScoreTotals.from_list([2 * value for value in totals.to_list()])
    assert restored.images == 4 and restored.means()["jaccard"] == pytest.approx(0.325)


def test_centred_ellipse_baseline() -> None:
    ellipse = centred_ellipse(100, 200)
    assert ellipse[50, 100] and not ellipse[0, 0] and not ellipse[50, 20]
    assert ellipse.mean() == pytest.approx(3.14159 * 0.35 * 0.35, abs=0.01)


def test_stage_defaults_and_the_paper_1024_flag() -> None:
    from dermseg_train import cli

    config = TrainConfig(data="d", out="o")
    assert [(s.size_px, s.peak_lrs) for s in config.stages] == [(512, PAPER_LRS_512), (1024, DEFAULT_LRS_1024)]
    assert TrainConfig.from_dict(config.to_dict()) == config
    ctx = cli.main.make_context("dermseg-train", ["--data", "d", "--out", "o", "--paper-1024-lrs"])
    with ctx:
        built = cli.build_config(ctx, ctx.params)
    assert [s.peak_lrs for s in built.stages] == [PAPER_LRS_512, PAPER_LRS_1024]


def test_divergence_is_a_typed_error_and_logged(tmp_path: Path) -> None:
    from dermseg_train.train import TrainingDivergedError

    config = _config(tmp_path, stages=[StageConfig(64, epochs=1, batch_size=2, lrs=(1e30, 1e30, 1e30))])
    with pytest.raises(TrainingDivergedError, match="training diverged"):
        Trainer(config).run()
    assert "diverged" in read_log(log_path(Path(config.out)))[-1]


def _config(tmp_path: Path, **overrides: Any) -> TrainConfig:
    values: dict[str, Any] = dict(
        data=str(SAMPLES_DIR), out=str(tmp_path / "model.pt"), val_count=2, encoder_weights="none", workers=0,
        device="cpu", deterministic=True, stages=[StageConfig(64, epochs=2, batch_size=2, lrs=(1e-3, 1e-3, 1e-3))],
        cache_dir=str(tmp_path / "cache"),
    )
    return TrainConfig(**(values | overrides))


class _Killed(Exception):
    pass


@pytest.mark.slow
def test_a_run_killed_mid_epoch_and_resumed_ends_with_the_same_weights(tmp_path: Path) -> None:
    whole = tmp_path / "whole"
    Trainer(_config(whole, amp=False)).run()  # FP32 (tests/test_train_precision.py resumes a BF16 run)

    cut = tmp_path / "cut"
    steps_per_epoch = 3  # 6 training images, batch 2

    def kill_in_second_epoch(kind: str, info: dict[str, Any]) -> None:
        if kind == "step" and info["global_step"] == steps_per_epoch + 2:
            raise _Killed()

    with pytest.raises(_Killed):
        Trainer(_config(cut, amp=False), kill_in_second_epoch).run()
    assert load_checkpoint(last_checkpoint_path(cut / "model.pt")).extra["training_state"]["progress"]["epochs_done"] == 1
    Trainer(_config(cut, amp=False)).run(resume=last_checkpoint_path(cut / "model.pt"))

    expected = load_checkpoint(last_checkpoint_path(whole / "model.pt")).state_dict
    resumed = load_checkpoint(last_checkpoint_path(cut / "model.pt")).state_dict
    assert expected.keys() == resumed.keys()
    different = [k for k in expected if not torch.equal(expected[k], resumed[k])]
    assert different == []
    assert [r["epoch"] for r in read_epochs(log_path(cut / "model.pt"))] == [1, 2]


def test_run_writes_best_last_log_and_split(tmp_path: Path) -> None:
    plain = Trainer(_config(tmp_path))
    left_out = [plain.train_pairs[0].image_id, plain.val_pairs[0].image_id]  # one training image, one validation image
    (tmp_path / "ids.txt").write_text(f"# two ids\n{left_out[0]}\n\n{left_out[1]}\n")
    config = _config(tmp_path, stages=[StageConfig(64, epochs=1, batch_size=2)], exclude=[str(tmp_path / "ids.txt")])
    Trainer(config).run()
    out = Path(config.out)
    log = read_epochs(log_path(out))
    assert len(log) == 1 and log[0]["validation"]["all"]["images"] == 2
    assert "large_lesions" in log[0]["validation"]
    split = json.loads(split_path(out).read_text())
    assert split["val"] == [p.image_id for p in plain.val_pairs]  # the validation split does not move
    assert len(split["val"]) == 2 and len(split["train"]) == 5 and not set(split["val"]) & set(split["train"])
    assert split["excluded_from_training"] == [left_out[0]] and left_out[0] not in split["train"]
    assert split["exclusion_lists"] == [str(tmp_path / "ids.txt")]
    best = load_checkpoint(out)
    assert best.provenance["config"]["stages"][0]["size_px"] == 64
    assert "training_state" not in best.extra


def test_the_scratch_preset_never_trains_on_the_full_resolution_images_or_the_samples() -> None:
    from dermseg_train.config import preset_values
    from dermseg_train.exclusions import HELDOUT_IDS, read_id_list

    held_out = read_id_list(HELDOUT_IDS)
    assert len(held_out) == len(set(held_out)) == 24
    assert {p.image_id for p in discover_pairs(SAMPLES_DIR)} <= set(held_out)
    assert preset_values("scratch")["exclude"] == [str(HELDOUT_IDS)]


@pytest.mark.shared_data
def test_the_held_out_ids_are_the_full_resolution_images() -> None:
    from dermseg_train.exclusions import HELDOUT_IDS, read_id_list

    from .conftest import ISIC2017_FULLRES, require_shared

    folder = require_shared(ISIC2017_FULLRES)
    assert sorted(read_id_list(HELDOUT_IDS)) == sorted(p.stem for p in folder.rglob("*.jpg"))


def test_resume_refuses_a_best_checkpoint(tmp_path: Path) -> None:
    from dermseg_deploy.errors import ModelFileError

    config = _config(tmp_path, stages=[StageConfig(64, epochs=1, batch_size=2)])
    Trainer(config).run()
    with pytest.raises(ModelFileError, match="not a resumable checkpoint"):
        Trainer(config).run(resume=Path(config.out))


@pytest.mark.slow
def test_two_process_ddp_on_the_cpu_freezes_then_unfreezes_and_counts_every_validation_image_once(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
        "-m", "dermseg_train.cli", "--data", str(SAMPLES_DIR), "--out", str(out), "--size", "64", "--epochs", "2",
        "--freeze-epochs", "1", "--batch-size", "2", "--val-count", "3", "--encoder-weights", "none", "--workers", "0",
        "--device", "cpu", "-q",
    ]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    log = read_epochs(log_path(out))
    assert [r["encoder_frozen"] for r in log] == [True, False]
    assert all(r["validation"]["all"]["images"] == 3 for r in log)  # 2 on rank 0, 1 on rank 1, none twice
    assert log[-1]["global_step"] == 2  # 5 training images over 2 ranks of batch 2: one step each per epoch
    assert load_checkpoint(out).provenance["world_size"] == 2
    assert "x 2 process(es)" in result.stderr
    torch.manual_seed(0)
    initial = build_model(encoder_weights=None).state_dict()
    trained = load_checkpoint(last_checkpoint_path(out)).state_dict
    assert not torch.equal(trained["encoder.layer4.2.conv2.weight"], initial["encoder.layer4.2.conv2.weight"])


def test_config_file_and_flags(tmp_path: Path) -> None:
    from dermseg_train import cli

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"stages": [{"size_px": 64, "epochs": 1, "batch_size": 4}], "seed": 5,
                                       "val_count": 2, "encoder_weights": "none", "workers": 0}))
    out = tmp_path / "model.pt"
    args = ["--config", str(config_file), "--data", str(SAMPLES_DIR), "--out", str(out), "--batch-size", "2",
            "--device", "cpu", "-q"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 0, result.output
    saved = load_checkpoint(out).provenance["config"]
    assert saved["seed"] == 5 and saved["stages"][0]["batch_size"] == 2 and saved["stages"][0]["size_px"] == 64
    shutil.rmtree(tmp_path / "cache", ignore_errors=True)


def test_config_file_values_stand_unless_a_flag_is_given(tmp_path: Path) -> None:
    from dermseg_train import cli

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"device": "cpu", "val_every": 3, "lighting": 0.1, "seed": 5}))
    base = ["--config", str(config_file), "--data", "d", "--out", "o"]
    for args, device, seed in ((base, "cpu", 5), ([*base, "--device", "auto", "--seed", "0"], "auto", 0)):
        ctx = cli.main.make_context("dermseg-train", args)
        with ctx:
            built = cli.build_config(ctx, ctx.params)
        assert (built.device, built.seed, built.val_every, built.lighting) == (device, seed, 3, 0.1)


def test_freeze_epochs_keep_the_encoder_fixed_while_the_decoder_learns(tmp_path: Path) -> None:
    config = _config(tmp_path, stages=[StageConfig(64, epochs=1, batch_size=2, freeze_epochs=1)])
    Trainer(config).run()
    torch.manual_seed(config.seed)
    initial = build_model(encoder_weights=None).state_dict()
    trained = load_checkpoint(last_checkpoint_path(config.out)).state_dict
    assert torch.equal(trained["encoder.layer4.2.conv2.weight"], initial["encoder.layer4.2.conv2.weight"])
    assert torch.equal(trained["encoder.stem.0.weight"], initial["encoder.stem.0.weight"])
    assert not torch.equal(trained["head.weight"], initial["head.weight"])



def _built(args: list[str]) -> TrainConfig:
    from dermseg_train import cli

    ctx = cli.main.make_context("dermseg-train", ["--data", "d", "--out", "o", *args])
    with ctx:
        return cli.build_config(ctx, ctx.params)


def test_the_scratch_preset_and_what_overrides_it(tmp_path: Path) -> None:
    from dermseg_train.config import PRESETS, SCRATCH_128_LRS, SCRATCH_LRS, preset_values

    scratch = _built(["--preset", "scratch"])
    assert (scratch.encoder_weights, scratch.dice_weight, scratch.val_every) == ("none", 1.0, 100)
    assert [(s.size_px, s.epochs, s.batch_size, s.peak_lrs) for s in scratch.stages] == [
        (64, 6, 8, SCRATCH_LRS), (128, 4, 8, SCRATCH_128_LRS)]
    values = preset_values("scratch")
    values["stages"][0]["epochs"] = 1
    assert PRESETS["scratch"]["stages"][0]["epochs"] == 6  # a copy was changed, never the preset
    assert _built([]) == _built(["--preset", "paper"]) and _built([]).encoder_weights == "imagenet"
    flags = _built(["--preset", "scratch", "--dice-weight", "0", "--batch-size", "4", "--lrs", "1e-4,1e-4,1e-4"])
    assert flags.dice_weight == 0.0 and {(s.batch_size, s.peak_lrs) for s in flags.stages} == {(4, (1e-4,) * 3)}
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"stages": [{"size_px": 96, "epochs": 2}]}))
    from_file = _built(["--preset", "scratch", "--config", str(config_file)])
    assert [(s.size_px, s.epochs) for s in from_file.stages] == [(96, 2)] and from_file.dice_weight == 1.0


def test_validation_halves_are_seeded_disjoint_and_cover_the_split() -> None:
    from dermseg_deploy.evaluation.val_split import split_val_halves

    ids = [f"ISIC_{i:07d}" for i in range(501)]
    halves = split_val_halves(ids, 0)
    assert len(halves["selection"]) == 251 and len(halves["reporting"]) == 250
    assert sorted(halves["selection"] + halves["reporting"]) == ids
    assert split_val_halves(list(reversed(ids)), 0) == halves and split_val_halves(ids, 1) != halves


def test_validate_on_selection_scores_the_selection_half_and_eval_reports_the_other(tmp_path: Path) -> None:
    from dermseg_deploy.cli import eval as eval_cli

    config = _config(tmp_path, val_count=4, validate_on="selection", stages=[StageConfig(64, epochs=1, batch_size=2)])
    Trainer(config).run()
    out = Path(config.out)
    split = json.loads(split_path(out).read_text())
    assert len(split["selection"]) == len(split["reporting"]) == 2
    assert sorted(split["selection"] + split["reporting"]) == sorted(split["val"])
    assert read_epochs(log_path(out))[0]["validation"]["all"]["images"] == 2
    for half in ("selection", "reporting"):
        result = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(out), "--device", "cpu",
                                                    "--ids", str(split_path(out)), "--half", half])
        assert result.exit_code == 0 and "all (2 images)" in result.stdout, result.output
    refused = CliRunner().invoke(eval_cli.main, [str(SAMPLES_DIR), "--engine", str(out), "--half", "reporting"])
    assert refused.exit_code == 2 and "--half needs --ids model.split.json" in refused.stderr
    with pytest.raises(Exception, match="validate_on"):
        _config(tmp_path, validate_on="reporting")
