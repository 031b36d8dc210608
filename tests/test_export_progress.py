"""Long exports say where they are: plain progress lines (count, elapsed, time left) when not on a terminal, the
memory plan that fits NNCF's calibration to a budget, and the up-front refusal of a setting that cannot fit."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from dermseg_deploy.cli import export as cli_export
from dermseg_deploy.cli.progress_display import ProgressDisplay
from dermseg_deploy.errors import UserError
from dermseg_deploy.export import memory_plan
from dermseg_deploy.samples import SAMPLES_DIR


def test_progress_is_plain_lines_with_counts_and_time_left_when_not_a_terminal() -> None:
    stream = io.StringIO()
    display = ProgressDisplay(stream, terminal=False)
    for done in range(0, 41):
        display.update("NNCF statistics", done, 40)
    display.close()
    lines = stream.getvalue().splitlines()
    assert lines[0] == "NNCF statistics: started, 40 to do"
    assert "NNCF statistics: 4/40 (10%), 0:00 elapsed, about 0:00 left" in lines
    assert lines[-1] == "NNCF statistics: 40/40 (100%), 0:00 elapsed"
    assert 10 <= len(lines) <= 12 and "\r" not in stream.getvalue()  # every 10%: a log stays readable


def test_the_memory_plan_fits_nncf_to_the_budget_and_refuses_what_cannot_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_plan, "available_memory_gb", lambda: 20.0)
    roomy = memory_plan.plan_memory(512, 40, 2, None, True, False, False)
    assert roomy.budget_gb == memory_plan.DEFAULT_MAX_MEMORY_GB and roomy.nncf_images == 40 and not roomy.int8_reduced
    for size in (512, 1024):  # NNCF's full bias correction holds layer inputs: the count is cut to what fits
        tight = memory_plan.plan_memory(size, 300, 2, None, True, False, False)
        assert tight.int8_reduced and not tight.fast_bias_correction
        peak = memory_plan.nncf_peak_gb
        assert peak(size, tight.nncf_images) <= tight.budget_gb < peak(size, tight.nncf_images + 1)
    low = memory_plan.plan_memory(1024, 300, 2, 9.0, True, False, False)  # not even 16 images fit the full one
    assert low.fast_bias_correction and low.nncf_images == 300
    assert memory_plan.nncf_peak_gb(1024, 300, fast_bias_correction=True) <= 9.0 < memory_plan.nncf_peak_gb(1024, 16)
    with pytest.raises(UserError, match="this machine has 20.0 GiB available"):
        memory_plan.plan_memory(512, 300, 2, 64.0, True, False, False)
    with pytest.raises(UserError, match="--formats int8 at 1024 px needs about .* GiB .NNCF with its fast bias correction; "
                                        ".* over the budget of 3.0 GiB"):
        memory_plan.plan_memory(1024, 300, 2, 3.0, True, False, False)
    fp16 = memory_plan.plan_memory(1024, 300, 2, None, False, False, True)  # AutoCast: one image fits, not two
    assert (fp16.fp16_images, fp16.requested_fp16_images) == (1, 2) and fp16.fp16_reduced
    with pytest.raises(UserError, match="--formats fp16 at 1024 px needs about .* GiB .AutoCast with one calibration"):
        memory_plan.plan_memory(1024, 300, 2, 8.0, False, False, True)
    monkeypatch.setattr(memory_plan, "available_memory_gb", lambda: 6.0)  # a small machine: its memory is the budget
    assert memory_plan.plan_memory(256, 300, 2, None, False, False, False).budget_gb == 6.0


def test_the_export_refuses_a_setting_that_cannot_fit_before_it_starts(checkpoint_path: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli_export.main, [str(checkpoint_path), "--size", "1024", "--formats", "onnx,openvino,int8",
                                                  "--calib", str(SAMPLES_DIR / "images"), "--int8-calib-count", "4",
                                                  "--int8-check-count", "4", "--max-memory-gb", "2", "-o", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "needs about" in result.stderr and "over the budget of 2.0 GiB (--max-memory-gb)" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was exported
