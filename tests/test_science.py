"""Tests of proxiqa_lab.studies.science: arms of fine-tunes, their evaluation and comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from proxiqa_lab.studies import settings_for
from proxiqa_lab.studies.science import Arm, curve, evaluate_runs, log_summary, point_savings, train_arms


def test_point_saving_is_the_rate_gap_at_equal_quality():
    control = pd.DataFrame({"image": "a", "bpp": [0.25, 0.5, 1.0], "vmaf": [60.0, 70.0, 80.0]})
    # the control reaches 70 at 0.5 bpp; a test point with 70 at 0.4 bpp saves 20 %
    test = pd.DataFrame({"image": ["a"], "bpp": [0.4], "vmaf": [70.0]})
    assert point_savings(control, test, ["vmaf"]).loc["a", "vmaf"] == pytest.approx(-20.0)
    # outside the control's quality range there is no saving to report
    high = pd.DataFrame({"image": ["a"], "bpp": [0.4], "vmaf": [90.0]})
    assert math.isnan(point_savings(control, high, ["vmaf"]).loc["a", "vmaf"])


def test_arms_train_evaluate_and_compare_in_smoke(tmp_path, monkeypatch, one_torch_thread):
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "runs"))
    settings = settings_for("smoke")
    lambdas = (0.0067, 0.025, 0.0932)
    arms = [Arm("control", "mse", lambdas=lambdas),
            Arm("direct", "direct:vmaf", 0.8),
            Arm("proxy", "proxy:vmaf", options=(("diagnose_every", 2), ("proxy_probes", ["grad"])))]
    grid = train_arms(arms, settings, jobs=1)
    assert list(grid["arm"]) == ["control"] * 3 + ["direct", "proxy"]
    assert grid["run"].str.contains("-ft").all() and grid["train_seconds"].gt(0).all()
    again = train_arms(arms, settings, jobs=1)
    assert (again["status"] == "reused").all()
    rng = np.random.default_rng(0)
    images = {"a": rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)}
    rd = evaluate_runs(grid, images, ["psnr_avg", "vmaf"], cache_dir=tmp_path / "cache")
    assert len(rd) == 5 and len(list((tmp_path / "cache").glob("*.csv"))) == 5
    cached = evaluate_runs(grid, images, ["psnr_avg", "vmaf"], cache_dir=tmp_path / "cache")
    pd.testing.assert_frame_equal(rd, cached)
    control = curve(rd, grid, "control")
    assert set(control["codec"]) == {"control"} and len(control) == 3
    saving = point_savings(control, curve(rd, grid, "proxy"), ["psnr_avg", "vmaf"])
    assert list(saving.index) == ["a"]
    summary = log_summary(grid.loc[grid["arm"] == "proxy", "run"].iloc[0])
    assert -1 <= summary["grad_cos_proxy"] <= 1 and math.isfinite(summary["gap"])


def test_science_table_reads_the_summary():
    from proxiqa_lab.studies.science import science_table

    cells = {m: {"mean": -5.0, "std": 1.0, "n": 24} for m in ("psnr_avg", "ssim", "ms_ssim", "vmaf", "vmaf_neg")}
    runs = {"r": {"lmbda": 0.025, "train_seconds": 600.0, "kodak_mean": {"bpp": 0.5},
                  "log": {"grad_cos_proxy": 0.01, "grad_cos_mse": 0.2, "gap": 0.5}}}
    summary = {"arms": {"a": {"steps": 1500, "point_saving_vs_control": cells, "point_delta_vs_control": cells,
                              "runs": runs},
                        "b": {"steps": 1500, "bd_vs_control": {"pchip": cells}, "runs": runs}}}
    screen = science_table("screen", summary=summary)
    assert list(screen.index) == ["a"] and screen.loc["a", "saving vmaf (%)"] == "-5.0 ± 1.0"
    assert screen.loc["a", "Δvmaf at equal rate"] == "-5.00 ± 1.00"
    assert screen.loc["a", "cos(∇M̂, ∇M)"] == 0.01 and screen.loc["a", "train min"] == 10.0
    assert screen.loc["a", "bpp"] == 0.5
    curves = science_table("curves", summary=summary)
    assert list(curves.index) == ["b"] and curves.loc["b", "vmaf"] == "-5.0 ± 1.0"
    with pytest.warns(UserWarning, match="no curves result for arm.*'a'"):
        partial = science_table("curves", ["b", "a"], summary=summary)
    assert list(partial.index) == ["b", "a"] and partial.loc["a", "steps"] == "not measured"
    assert partial.loc["b", "vmaf"] == "-5.0 ± 1.0"
    with pytest.warns(UserWarning, match="no screen result yet"):
        assert science_table("screen", summary={"arms": {}}).empty
    with pytest.raises(ValueError, match="kind must be"):
        science_table("table", summary=summary)


def test_point_delta_is_the_quality_gap_at_equal_rate():
    from proxiqa_lab.studies.science import point_deltas

    control = pd.DataFrame({"image": "a", "bpp": [0.25, 0.5, 1.0], "vmaf": [60.0, 70.0, 80.0]})
    test = pd.DataFrame({"image": ["a"], "bpp": [0.5], "vmaf": [95.0]})  # above the control's range: still a delta
    assert point_deltas(control, test, ["vmaf"]).loc["a", "vmaf"] == pytest.approx(25.0)
    low = pd.DataFrame({"image": ["a"], "bpp": [0.1], "vmaf": [50.0]})
    assert math.isnan(point_deltas(control, low, ["vmaf"]).loc["a", "vmaf"])


def test_committed_report_has_every_arm_the_notebooks_show():
    """The lab-science tables of notebooks 03, 05, 06 and 07 read the committed summary: each arm they name is in it."""
    import ast
    import json as _json

    from proxiqa_lab.paths import project_root
    from proxiqa_lab.studies.science import load_summary

    summary = load_summary()
    key = {"screen": "point_saving_vs_control", "curves": "bd_vs_control"}
    named = []
    for path in sorted((project_root() / "notebooks").glob("*.ipynb")):
        for cell in _json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code" or "science_table(" not in "".join(cell["source"]):
                continue
            for node in ast.walk(ast.parse("".join(cell["source"]))):
                if (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "science_table"
                        and len(node.args) >= 2):  # with one argument it shows whatever the report has
                    kind, arms = (ast.literal_eval(a) for a in node.args[:2])
                    named += [(path.stem, kind, arm) for arm in arms]
    assert named, "no notebook shows a lab-science table"
    absent = [n for n in named if n[2] not in summary["arms"] or key[n[1]] not in summary["arms"][n[2]]]
    assert not absent, f"arms the notebooks show but reports/lab_science/summary.json lacks: {absent}"


def _lab_science():
    """``benchmarks/lab_science.py`` as a module."""
    import importlib.util

    from proxiqa_lab.paths import project_root

    spec = importlib.util.spec_from_file_location("lab_science", project_root() / "benchmarks" / "lab_science.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_keeps_the_previous_arms_it_did_not_measure_again_and_checks_the_control():
    lab = _lab_science()
    means = {m: 50.0 for m in ("bpp", *lab.METRICS)}
    control = lambda shift: {"runs": {"r": {"lmbda": 0.025, "kodak_mean": {**means, "vmaf": 50.0 + shift}}}}  # noqa: E731
    previous = {"arms": {lab.CONTROL: control(0.0), "VMAF_direct α=0.5": {"objective": "direct:vmaf"},
                         "VMAF_p α=0.8": {"objective": "old"}, "an arm no longer in the script": {}},
                "fooled_proxy": {"frozen α=1": {"run": "f"}}}
    result = {"arms": {"VMAF_p α=0.8": {"objective": "new"}, lab.CONTROL: control(0.25)}, "fooled_proxy": {}}
    carried = lab.carry_over(result, previous)
    assert sorted(carried) == ["VMAF_direct α=0.5", "frozen α=1"]
    assert result["arms"]["VMAF_p α=0.8"] == {"objective": "new"}  # measured now: never replaced
    assert result["arms"]["VMAF_direct α=0.5"]["carried"] and result["fooled_proxy"]["frozen α=1"]["carried"]
    assert "an arm no longer in the script" not in result["arms"]
    assert list(result["arms"]) == [lab.CONTROL, "VMAF_direct α=0.5", "VMAF_p α=0.8"]  # the script's order
    assert result["control_vs_previous"] == {"runs": 1, "max_abs_diff": pytest.approx(0.25)}


def test_report_cells_say_out_of_range_and_mark_carried_rows():
    lab = _lab_science()
    assert lab.cell({"mean": -1.234, "std": 0.5, "n": 24}) == "-1.2 ± 0.5"
    assert lab.cell({"mean": 2.0, "std": math.nan, "n": 1}) == "+2.0"
    assert lab.cell({"mean": 2.0, "std": 0.1, "n": 5}, min_n=12) == "out of range"
    assert lab.cell(None) == "n/a"
    stat = {m: {"mean": 1.0, "std": 0.5, "n": 24} for m in lab.METRICS}
    log = {"grad_cos_proxy": 0.01, "grad_cos_mse": 0.2, "grad_scale_proxy": 0.05, "gap": -0.1}
    entry = {"runs": {"r": {"lmbda": 0.025, "train_seconds": 600.0, "kodak_mean": {"bpp": 0.5}, "log": log}},
             "point_saving_vs_control": stat, "point_delta_vs_control": stat, "carried": True}
    line = lab.screen_line("arm", entry)
    assert line.startswith(f"| arm{lab.CARRIED_MARK} | 0.500 | +1.0 ± 0.5") and line.endswith("| 10.0 |")
    assert lab.screen_line("arm", {**entry, "runs": {}}) is None
    assert lab.screen_line("VMAF_p |100 − M̂|", entry).startswith("| VMAF_p \\|100 − M̂\\|")
