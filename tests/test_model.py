from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
from torchvision.models import resnet34

from dermseg_deploy.errors import UserError
from dermseg_deploy.model.model_config import ModelConfig
from dermseg_deploy.model.sizes import is_valid_size, require_valid_size
from dermseg_train import encoder_weights as weights_module
from dermseg_train.encoder_weights import EncoderWeightsError, build_model
from dermseg_train.optim import layer_groups


@pytest.fixture(scope="module")
def net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(encoder_weights=None)


@pytest.mark.parametrize("height,width", [(64, 64), (64, 96), (96, 64)])
def test_output_is_one_channel_logits_of_input_size(net: torch.nn.Module, height: int, width: int) -> None:
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(2, 3, height, width))
    assert out.shape == (2, 1, height, width)
    assert out.dtype == torch.float32


def test_backward_reaches_every_parameter(net: torch.nn.Module) -> None:
    net.train()
    net.zero_grad()
    out = net(torch.randn(2, 3, 64, 64))
    torch.nn.functional.binary_cross_entropy_with_logits(out, torch.rand_like(out).round()).backward()
    without_grad = [name for name, p in net.named_parameters() if p.grad is None]
    assert without_grad == []


def test_parameter_count_matches_the_paper_architecture(net: torch.nn.Module) -> None:
    count = sum(p.numel() for p in net.parameters())
    assert 41_000_000 < count < 41_500_000


def test_layer_groups_partition_the_parameters(net: torch.nn.Module) -> None:
    groups = layer_groups(net)
    ids = [id(p) for group in groups for p in group]
    assert len(groups) == 3 and all(groups)
    assert len(ids) == len(set(ids)) == len(list(net.parameters()))


def test_last_cross_sees_the_input_image(net: torch.nn.Module) -> None:
    assert net.head.in_channels == 96 + 3


@pytest.mark.parametrize("size_px", [0, -32, 70, 33, 4128, 100_000])
def test_sizes_must_be_multiples_of_32(size_px: int) -> None:
    assert not is_valid_size(size_px)
    with pytest.raises(UserError, match="--size .*: must be a positive multiple of 32, at most 4096"):
        require_valid_size(size_px)
    assert require_valid_size(96) == 96
    assert require_valid_size(4096) == 4096


def test_local_pth_encoder_weights_are_loaded(tmp_path: Path) -> None:
    reference = resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(reference.state_dict(), path)
    model = build_model(ModelConfig(), encoder_weights=path)
    assert torch.equal(model.encoder.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.encoder.layer4[2].conv2.weight, reference.layer4[2].conv2.weight)


def test_encoder_weights_that_do_not_fit_are_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(1)}, path)
    with pytest.raises(EncoderWeightsError, match="do not fit resnet34"):
        build_model(encoder_weights=path)
    with pytest.raises(EncoderWeightsError, match="not found"):
        build_model(encoder_weights=tmp_path / "missing.pth")


def test_imagenet_weights_without_network_give_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(weights_module.ResNet34_Weights.IMAGENET1K_V1, "get_state_dict", offline, raising=False)
    with pytest.raises(EncoderWeightsError, match="could not download"):
        build_model(encoder_weights="imagenet")


def test_encoder_weights_errors_are_user_errors(tmp_path: Path) -> None:
    path = tmp_path / "not-a-state-dict.pth"
    path.write_bytes(b"garbage")
    with pytest.raises(EncoderWeightsError, match="not a loadable state dict") as info:
        build_model(encoder_weights=path)
    assert isinstance(info.value, UserError)
