from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from dermseg_deploy.errors import ModelFileError
from dermseg_deploy.model.checkpoint import (
    Checkpoint,
    check_plain,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
)
from dermseg_deploy.model.metadata import ModelMetadata


def test_round_trip_gives_the_same_outputs(checkpoint_path: Path, calibrated_model: torch.nn.Module) -> None:
    checkpoint = load_checkpoint(checkpoint_path)
    assert checkpoint.metadata.size_px == 64
    assert checkpoint.metadata.train_data == "test fixture"
    model = model_from_checkpoint(checkpoint)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), calibrated_model(x))


def test_checkpoint_loads_with_weights_only(checkpoint_path: Path) -> None:
    raw = torch.load(checkpoint_path, weights_only=True)
    assert raw["format_version"] == 1
    assert {"model_config", "metadata", "state_dict", "metrics", "provenance"} <= set(raw)


def _tampered(checkpoint_path: Path, tmp_path: Path, change: str) -> Path:
    raw = torch.load(checkpoint_path, weights_only=True)
    state = raw["state_dict"]
    if change == "missing":
        del state["head.weight"]
    elif change == "unexpected":
        state["extra.weight"] = torch.zeros(1)
    else:
        state["head.weight"] = torch.zeros(2, 99, 1, 1)
    path = tmp_path / f"{change}.pt"
    torch.save(raw, path)
    return path


@pytest.mark.parametrize("change,expected", [
    ("missing", "missing keys \\['head.weight'\\]"),
    ("unexpected", "unexpected keys \\['extra.weight'\\]"),
    ("shape", "wrong shape keys"),
])
def test_strict_load_names_the_keys(checkpoint_path: Path, tmp_path: Path, change: str, expected: str) -> None:
    path = _tampered(checkpoint_path, tmp_path, change)
    with pytest.raises(ModelFileError, match=expected):
        model_from_checkpoint(load_checkpoint(path), str(path))


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("touch pwned-by-pickle",))


def test_a_pickle_that_would_run_code_is_refused_without_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    saved, raw = tmp_path / "evil.pt", tmp_path / "evil-raw.pt"
    torch.save({"format_version": 1, "payload": _RunsCode()}, saved)
    with raw.open("wb") as handle:
        pickle.dump({"format_version": 1, "payload": _RunsCode()}, handle)
    with pytest.raises(ModelFileError, match="refused to load.*could run code.*system"):
        load_checkpoint(saved)
    with pytest.raises(ModelFileError, match="weights_only loading refuses"):
        load_checkpoint(raw)
    assert not (tmp_path / "pwned-by-pickle").exists()


@pytest.mark.parametrize("content,expected", [(b"", "not a readable checkpoint"), (b"garbage" * 10, "not a readable")])
def test_unreadable_files_are_model_file_errors(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=expected):
        load_checkpoint(path)


def test_a_plain_state_dict_is_not_a_dermseg_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    torch.save({"weight": torch.zeros(1)}, path)
    with pytest.raises(ModelFileError, match="missing keys"):
        load_checkpoint(path)
    with pytest.raises(ModelFileError, match="not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_save_is_atomic_and_refuses_non_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    checkpoint = Checkpoint({}, ModelMetadata(), {"w": torch.zeros(2)}, metrics={"version": torch.__version__})
    with pytest.raises(TypeError, match="TorchVersion"):
        save_checkpoint(checkpoint, path)
    assert list(tmp_path.iterdir()) == []
    checkpoint.metrics = {"version": str(torch.__version__)}
    save_checkpoint(checkpoint, path)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]


def test_check_plain_accepts_nested_plain_types() -> None:
    check_plain({"a": [1, 2.0, "x", None, True, (torch.zeros(1),)], "b": {"c": {}}})
