"""Malformed and hostile model files: one clear line each, the documented exit code, no traceback, no mask,
and no allocation beyond a few GB (each kind runs in one subprocess under an address-space limit)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import torch

from dermseg_deploy.samples import sample_image_paths
from dermseg_deploy.tensorrt.sidecar import plan_digest

from .hostile_models import Case, checkpoint_cases, onnx_cases, openvino_cases, sidecar_cases
from .test_tensorrt_parts import make_sidecar

ROOT = Path(__file__).resolve().parents[1]


def run_matrix(cases: list[Case], folder: Path) -> list[dict[str, Any]]:
    spec = {"cases": [asdict(case) for case in cases], "image": str(sample_image_paths()[0]),
            "out_root": str(folder / "outputs")}
    (folder / "cases.json").write_text(json.dumps(spec))
    completed = subprocess.run(
        [sys.executable, "-m", "tests.hostile_models", str(folder / "cases.json"), str(folder / "results.json")],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads((folder / "results.json").read_text())
    assert results["limit_holds"], "the address-space limit did not bind"
    records: list[dict[str, Any]] = results["records"]
    return records


def check(records: list[dict[str, Any]]) -> None:
    problems = []
    for record in records:
        lines = [line for line in record["stderr"].splitlines() if line.startswith("error:")]
        wrong = []
        if record["got_exit"] != record["exit_code"]:
            wrong.append(f"exit {record['got_exit']} (expected {record['exit_code']})")
        if "Traceback" in record["stderr"]:
            wrong.append("a traceback")
        if len(lines) != 1 or record["expect"] not in lines[0]:
            wrong.append(f"error lines {lines}, expected one with {record['expect']!r}")
        if record["masks"]:
            wrong.append(f"masks written: {record['masks']}")
        if wrong:
            problems.append(f"{record['name']}: {'; '.join(wrong)} {record['exception']}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_malformed_checkpoints_are_refused_in_one_line(tmp_path: Path, checkpoint_path: Path) -> None:
    full = torch.load(checkpoint_path, weights_only=True)["state_dict"]
    cases = checkpoint_cases(tmp_path, full)
    assert len(cases) >= 30
    check(run_matrix(cases, tmp_path))


@pytest.mark.slow
def test_malformed_onnx_files_are_refused_in_one_line(tmp_path: Path) -> None:
    cases = onnx_cases(tmp_path)
    assert len(cases) >= 15
    check(run_matrix(cases, tmp_path))


@pytest.mark.slow
def test_malformed_openvino_files_are_refused_in_one_line(tmp_path: Path) -> None:
    cases = openvino_cases(tmp_path)
    assert len(cases) >= 9
    check(run_matrix(cases, tmp_path))


def test_malformed_plan_sidecars_are_refused_in_one_line(tmp_path: Path) -> None:
    valid = json.loads(make_sidecar(plan_sha256=plan_digest(b"not a real plan")).to_json())
    cases = sidecar_cases(tmp_path, valid)
    assert len(cases) >= 15
    check(run_matrix(cases, tmp_path))
