from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from dermseg_deploy.errors import UserError
from dermseg_deploy.evaluation.metrics import score_image
from dermseg_deploy.evaluation.pairs import discover_pairs
from dermseg_deploy.model.checkpoint import load_checkpoint
from dermseg_deploy.model.metadata import ModelMetadata
from dermseg_deploy.samples import SAMPLES_DIR
from dermseg_train import cli
from dermseg_train.augment import dihedral
from dermseg_train.data import SegmentationDataset, split_pairs

from .conftest import ISIC2018_512, require_shared


def test_pairs_are_found_by_id_with_a_case_insensitive_suffix(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES_DIR / "images", tmp_path / "images")
    shutil.copytree(SAMPLES_DIR / "masks", tmp_path / "masks")
    first = next((tmp_path / "masks").iterdir())
    first.rename(first.with_name(first.name.replace("_segmentation", "_Segmentation")))
    pairs = discover_pairs(tmp_path)
    assert len(pairs) == 8 and all(p.mask.stem.lower() == f"{p.image_id}_segmentation".lower() for p in pairs)


def test_unpaired_files_are_listed(tmp_path: Path) -> None:
    shutil.copytree(SAMPLES_DIR / "images", tmp_path / "images")
    shutil.copytree(SAMPLES_DIR / "masks", tmp_path / "masks")
    (tmp_path / "images" / "ISIC_9999999.jpg").write_bytes(b"x")
    (tmp_path / "masks" / "ISIC_8888888_segmentation.png").write_bytes(b"x")
    with pytest.raises(UserError, match="1 images without masks: ISIC_9999999.*1 masks without images: ISIC_8888888"):
        discover_pairs(tmp_path)


def test_split_is_seeded_and_disjoint() -> None:
    pairs = discover_pairs(SAMPLES_DIR)
    train_a, val_a = split_pairs(pairs, 3, seed=1)
    train_b, val_b = split_pairs(pairs, 3, seed=1)
    assert val_a == val_b and len(val_a) == 3 and not set(train_a) & set(val_a)


def test_dihedral_moves_image_and_mask_together() -> None:
    dataset = SegmentationDataset(discover_pairs(SAMPLES_DIR)[:1], 64, ModelMetadata(size_px=64), augment=False)
    image, mask = dataset[0]
    for k in range(8):
        moved_image, moved_mask = dihedral(image, k), dihedral(mask, k)
        red = moved_image[0] > moved_image[0].mean()
        assert torch.equal(red & moved_mask[0].bool(), dihedral((image[0] > image[0].mean()) & mask[0].bool(), k))
    assert len({tuple(dihedral(torch.arange(4).view(1, 2, 2), k).flatten().tolist()) for k in range(8)}) == 8


def test_isic_jaccard_by_hand() -> None:
    truth = np.array([[255, 255, 0, 0]], dtype=np.uint8)
    assert score_image(np.array([[255, 0, 0, 0]], dtype=np.uint8), truth).jaccard == 0.5
    assert score_image(np.array([[255, 0, 0, 0]], dtype=np.uint8), truth).thresholded_jaccard == 0.0
    assert score_image(np.zeros((1, 4), dtype=np.uint8), np.zeros((1, 4), dtype=np.uint8)).jaccard == 1.0
    assert score_image(np.array([[128, 129, 0, 0]], dtype=np.uint8), truth).jaccard == 0.5


def test_train_cli_trains_validates_and_saves(tmp_path: Path) -> None:
    out = tmp_path / "model.pt"
    args = ["--data", SAMPLES_DIR, "--out", out, "--size", "64", "--steps", "2", "--batch-size", "2",
            "--encoder-weights", "none", "--workers", "0", "--val-count", "2", "--device", "cpu"]
    result = CliRunner().invoke(cli.main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    assert "best: epoch 1 at 64 px, saved as" in result.output and f"dermseg-export {out} --size 64" in result.output
    assert "validation on 2 held-out images: jaccard" in result.output
    checkpoint = load_checkpoint(out)
    assert checkpoint.metadata.size_px == checkpoint.metadata.train_size_px == 64  # a .pt runs at the trained scale
    assert len(checkpoint.provenance["val_ids"]) == 2
    assert set(checkpoint.metrics["baselines"]) == {"all_lesion", "all_background", "centred_ellipse"}


def test_train_cli_without_imagenet_download_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.error

    from dermseg_train import encoder_weights as model

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(model.ResNet34_Weights.IMAGENET1K_V1, "get_state_dict", offline, raising=False)
    args = ["--data", str(SAMPLES_DIR), "--out", str(tmp_path / "m.pt"), "--size", "64", "--steps", "1"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 2 and "could not download" in result.stderr


@pytest.mark.shared_data
def test_real_isic2018_layout_is_paired() -> None:
    pairs = discover_pairs(require_shared(ISIC2018_512))
    assert len(pairs) == 2000
    train, val = split_pairs(pairs, 500, seed=0)
    assert len(val) == 500 and len(train) == 1500
