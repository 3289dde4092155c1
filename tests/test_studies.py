"""Study functions that hold logic: settings, results files, run grids, BD tables, runtimes, tiles."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from proxiqa_lab import figures, studies
from proxiqa_lab.studies.grid import RunSpec, grid_specs


@pytest.fixture
def roots(tmp_path, monkeypatch):
    monkeypatch.setenv("PROXIQA_LAB_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("PROXIQA_LAB_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_settings_per_profile_and_overrides():
    smoke, lab = studies.settings_for("smoke"), studies.settings_for("lab")
    assert smoke.objectives[0] == lab.objectives[0] == "mse"
    assert len(smoke.lambdas) >= 4, "BD-rate needs at least 4 rate points"
    assert smoke.eval_datasets == ("kodak", "wikipedia24")
    assert smoke.train_options()["keep_checkpoints_at"] == list(smoke.keep_checkpoints_at)
    assert max(smoke.keep_checkpoints_at) <= smoke.train["steps"]
    assert studies.settings_for("smoke", eval_images={"kodak": 1}).eval_datasets == ("kodak",)
    with pytest.raises(ValueError, match="unknown study setting"):
        studies.settings_for("smoke", lambda_values=(1,))
    with pytest.raises(ValueError, match="profile must be one of"):
        studies.settings_for("huge")


def test_results_roundtrip_as_plain_json(roots):
    df = pd.DataFrame({"a": [1.0, np.nan], "b": ["x", "y"]})
    path = studies.record_results("smoke", "99_test", {"table": df, "n": np.int64(3), "x": np.float32(0.5),
                                                       "inf": float("inf"), "arr": np.arange(2), "p": roots})
    assert path == roots / "reports/smoke/99_test/results.json"
    loaded = studies.load_results("smoke", "99_test")
    assert loaded["table"] == [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}]
    assert loaded["n"] == 3 and loaded["x"] == 0.5 and loaded["inf"] is None and loaded["arr"] == [0, 1]
    assert json.loads(path.read_text())["notebook"] == "99_test"
    with pytest.raises(FileNotFoundError, match="run notebooks/98_missing.ipynb"):
        studies.load_results("smoke", "98_missing")
    with pytest.raises(ValueError, match="dict"):
        studies.record_results("smoke", "99_test", [1, 2])


def test_run_names_and_grid_order():
    spec = RunSpec("proxy:vmaf", 0.0067, 0.5)
    assert spec.name("bls", 8) == "bls8-proxy_vmaf-lmbda0.0067-alpha0.5"
    assert RunSpec("mse", 0.0018, 0.5).name("bls", 64) == "bls64-mse-lmbda0.0018"
    assert RunSpec("ssim+ld", 0.01, 0.3, finetune=True).name("bls", 8) == "bls8-ssim_ld-lmbda0.01-alpha0.3-ft"
    with_proxy = RunSpec("pretrained-proxy:vmaf", 0.01, overrides=(("proxy_init", "/x.pt"),))
    assert "proxy_init" not in with_proxy.name("bls", 8)
    specs = grid_specs(["proxy:vmaf", "mse"], [0.01, 0.1], finetune=True)
    assert [(s.objective, s.finetune) for s in specs] == [("mse", False)] * 2 + [("proxy:vmaf", True)] * 2


def test_train_grid_trains_then_reuses_then_extends(roots):
    specs = [RunSpec("mse", 0.0932)]
    first = studies.train_grid(specs, "smoke", train={"steps": 2, "keep_checkpoints_at": [1, 2]}, progress=False)
    assert first["status"].tolist() == ["trained"]
    run = roots / "runs/smoke/bls8-mse-lmbda0.0932"
    assert first["run"][0] == str(run) and (run / "model.pt").is_file()
    again = studies.train_grid(specs, "smoke", train={"steps": 2, "keep_checkpoints_at": [1, 2]}, progress=False)
    assert again["status"].tolist() == ["reused"]
    assert again["train_seconds"][0] == first["train_seconds"][0] > 0, "a reused run reports its recorded time"
    longer = studies.train_grid(specs, "smoke", train={"steps": 3, "keep_checkpoints_at": [1, 2]}, progress=False)
    assert longer["status"].tolist() == ["trained"] and json.loads((run / "run.json").read_text())["step"] == 3
    assert studies.checkpoint_at(run, 1).name == "step_1.pt"
    with pytest.raises(FileNotFoundError, match="keeps"):
        studies.checkpoint_at(run, 7)
    codec = studies.learned_codec(longer, "mse")
    assert codec.name == "BLS MSE" and len(codec.points) == 1
    with pytest.raises(ValueError, match="no 'ssim' runs"):
        studies.learned_codec(longer, "ssim")


def test_finetune_drops_lr_at_its_own_80_percent(roots):
    specs = [RunSpec("mse", 0.01), RunSpec("ssim+ld", 0.01, finetune=True)]
    grid = studies.train_grid(specs, "smoke", train={"steps": 2, "lr_drop_step": 1}, finetune_steps=5,
                              progress=False)
    configs = [json.loads((Path(run) / "config.json").read_text()) for run in grid["run"]]
    assert [(c["steps"], c["lr_drop_step"]) for c in configs] == [(2, 1), (5, 4)]
    assert configs[1]["init_checkpoint"] == grid["model"][0]
    assert configs[1]["keep_checkpoints_at"] == [1, 2, 3, 4, 5], "a fine-tune keeps 20 %, 40 %, ... of its steps"
    assert studies.checkpoint_at(grid["run"][1], 3).is_file()


def test_equal_steps_control_is_a_second_mse_curve(roots):
    lab = studies.settings_for("lab")
    assert [s.name("bls", 64) for s in lab.control_specs()] == [
        f"bls64-mse-lmbda{v:g}-ft" for v in lab.lambdas], "the controls are the MSE fine-tunes Fig. 11 compares"
    assert studies.settings_for("smoke").control_specs() == [], "nothing is fine-tuned: every model trains as long"
    settings = studies.settings_for("smoke", lambdas=(0.01, 0.1), objectives=("mse", "ssim"), finetune_steps=2,
                                    anchor_lmbda=None, bmshj_lambdas=())
    specs = settings.specs(settings.objectives) + settings.control_specs()
    grid = studies.train_grid(specs, "smoke", train={"steps": 1}, finetune_steps=2, progress=False)
    with pytest.raises(ValueError, match="more than one 'mse' run"):
        studies.learned_codec(grid, "mse")  # the models and their controls must not be mixed into one curve
    codecs = studies.rd_learned_codecs(grid, settings)
    assert [c.name for c in codecs] == ["BLS MSE", "BLS SSIM", studies.CONTROL]
    models = [[Path(p).parent.name for p in c.points] for c in codecs]
    assert models[0] == ["bls8-mse-lmbda0.01", "bls8-mse-lmbda0.1"]
    assert models[2] == ["bls8-mse-lmbda0.01-ft", "bls8-mse-lmbda0.1-ft"]

    def curve(codec, shift):  # VMAF rises with log-rate; ``shift`` moves the curve to fewer bits
        bpp = np.array([0.1, 0.2, 0.4, 0.8])
        return pd.DataFrame({"codec": codec, "image": "kodim01", "point": range(4), "bpp": bpp * shift,
                             "vmaf": 20 * np.log2(bpp) + 100})

    df = pd.concat([curve("BLS MSE", 1.0), curve("BLS SSIM", 0.9), curve(studies.CONTROL, 0.8),
                    curve("jpeg", 0.5)]).assign(dataset="kodak")
    rd = {"kodak": studies.bd_study(df, "BLS MSE", ["vmaf"])}
    equal = studies.equal_steps_study(rd, ["vmaf"])["kodak"]
    assert equal.baseline == studies.CONTROL and "jpeg" not in set(equal.df["codec"])
    got = equal.summary[("vmaf", "mean")]
    assert got["BLS MSE"] == pytest.approx(25.0) and got["BLS SSIM"] == pytest.approx(12.5)
    assert rd["kodak"].summary.loc["BLS SSIM", ("vmaf", "mean")] == pytest.approx(-10.0), \
        "against the shorter-trained MSE the same codec seems to gain"
    no_control = {"kodak": studies.bd_study(df[df["codec"] != studies.CONTROL], "BLS MSE", ["vmaf"])}
    assert studies.equal_steps_study(no_control, ["vmaf"]) == {}


def test_finetune_schedule():
    from proxiqa_lab.training import finetune_schedule

    assert finetune_schedule(1500) == ([300, 600, 900, 1200, 1500], 1200)
    assert finetune_schedule(2) == ([1, 2], 1)
    with pytest.raises(ValueError, match="at least 1 step"):
        finetune_schedule(0)


def test_steps_plan_per_profile():
    smoke, lab = studies.settings_for("smoke"), studies.settings_for("lab")
    plan = smoke.steps_plan("proxy:vmaf")
    assert plan.steps == smoke.keep_checkpoints_at and plan.lr_drop_step == smoke.lr_drop_step
    assert [s.objective for s in plan.specs] == ["mse"] * 4 + ["proxy:vmaf"] * 4
    assert not any(s.finetune for s in plan.specs)
    plan = lab.steps_plan("proxy:vmaf")
    assert plan.steps == (600, 1500) and plan.lr_drop_step == 1200, "the kept steps the zoo ships"
    assert lab.replace(steps_kept=None).steps_plan("proxy:vmaf").steps == (300, 600, 900, 1200, 1500)
    with pytest.raises(ValueError, match="not steps a 1500-step fine-tune keeps"):
        lab.replace(steps_kept=(700,)).steps_plan("proxy:vmaf")
    tuned = [(s.objective, s.lmbda) for s in plan.specs if s.finetune]
    assert tuned == [("mse", v) for v in lab.steps_lambdas] + [("proxy:vmaf", v) for v in lab.steps_lambdas]
    assert plan.specs[0] == RunSpec("mse", lab.anchor_lmbda), "the fine-tunes start from the anchor's MSE models"


def test_training_steps_study_compares_fine_tunes_with_mse_fine_tunes(roots, photo):
    settings = studies.settings_for("smoke", lambdas=(0.003, 0.01, 0.1), finetune_steps=5, anchor_lmbda=0.1)
    plan = settings.steps_plan("ssim+ld")
    grid = studies.train_grid(plan.specs, "smoke", train={"steps": 2}, finetune_steps=5, progress=False)
    assert (roots / "runs/smoke/bls8-mse-lmbda0.01-ft/checkpoints/step_1.pt").is_file()
    # The MSE models the fine-tunes start from keep no step_1 checkpoint: the study must use the MSE fine-tunes.
    table, per_image = studies.training_steps_study(grid, plan.steps, {"p": photo[:64, :64]}, "ssim+ld",
                                                    baseline_step=3, metric="psnr_avg")
    assert table["step"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert set(table["curve"]) == {"ssim+ld (MSE @ 3)", "ssim+ld (MSE @ same step)"}
    assert len(per_image) == 10 and per_image["image"].eq("p").all()


def test_studies_reject_an_unknown_bd_method_before_evaluating():
    with pytest.raises(ValueError, match="unknown BD method 'spline'"):
        studies.rd_study([], {"kodak": 1}, ["vmaf"], "BLS MSE", method="spline")
    with pytest.raises(ValueError, match="unknown BD method 'spline'"):
        studies.training_steps_study(pd.DataFrame(), [1], {}, method="spline")


def test_anchor_trains_one_mse_model_from_scratch(roots):
    specs = grid_specs(["proxy:vmaf", "mse"], [0.01, 0.1], finetune=True, anchor=0.1)
    assert [(s.objective, s.lmbda, s.base_lmbda) for s in specs] == [
        ("mse", 0.1, None), ("mse", 0.01, 0.1), ("proxy:vmaf", 0.01, None), ("proxy:vmaf", 0.1, None)]
    assert specs[1].name("bls", 8) == "bls8-mse-lmbda0.01-from0.1"
    with pytest.raises(ValueError, match="must be one of"):
        grid_specs(["mse"], [0.01], anchor=0.1)
    with pytest.raises(ValueError, match="base_lmbda is for MSE"):
        RunSpec("proxy:vmaf", 0.01, base_lmbda=0.1)
    mse = [s for s in specs if s.objective == "mse"] + [RunSpec("ssim+ld", 0.01, finetune=True)]
    grid = studies.train_grid(mse, "smoke", train={"steps": 2}, finetune_steps=5, progress=False)
    configs = [json.loads((Path(run) / "config.json").read_text()) for run in grid["run"]]
    assert [(c["steps"], c["init_checkpoint"]) for c in configs] == [
        (2, None), (5, grid["model"][0]), (5, grid["model"][1])]


def test_lab_settings_fine_tune_from_one_anchor():
    lab = studies.settings_for("lab")
    specs = lab.specs(["proxy:vmaf"], [0.025])
    assert [(s.objective, s.lmbda, s.finetune, s.base_lmbda) for s in specs] == [
        ("mse", lab.anchor_lmbda, False, None), ("mse", 0.025, False, lab.anchor_lmbda), ("proxy:vmaf", 0.025, True, None)]
    assert set(lab.explorer_lambdas) <= set(lab.lambdas), "the explorer reuses the RD grid's runs"
    smoke = studies.settings_for("smoke")
    assert [s.objective for s in smoke.specs(["proxy:vmaf"], [0.025])] == ["proxy:vmaf"]


def test_explorer_specs():
    specs = studies.explorer_specs([0.0, 1.0], [0.01, 0.1], finetune=True, anchor=0.1)
    assert [(s.objective, s.lmbda, s.alpha, s.finetune, s.base_lmbda) for s in specs] == [
        ("mse", 0.1, 0.5, False, None), ("mse", 0.01, 0.5, False, 0.1),
        ("proxy:vmaf", 0.01, 0.0, True, None), ("proxy:vmaf", 0.1, 0.0, True, None),
        ("proxy:vmaf", 0.01, 1.0, True, None), ("proxy:vmaf", 0.1, 1.0, True, None)]
    assert [s.finetune for s in studies.explorer_specs([0.5], [0.01])] == [False]


def test_explorer_grid_fine_tunes_from_mse(roots, photo):
    table = studies.explorer_grid([0.0, 1.0], [0.01], photo[:64, :64], roots / "explorer", "smoke", "proxy:vmaf",
                                  train={"steps": 2}, crop_size=32, progress=False, finetune_steps=2,
                                  metrics=("psnr_avg",))
    assert table["alpha"].tolist() == [0.0, 1.0] and table["psnr_avg"].notna().all()
    inits = [json.loads((Path(run) / "config.json").read_text())["init_checkpoint"] for run in table["run"]]
    assert all(init.endswith("bls8-mse-lmbda0.01/model.pt") for init in inits)


def test_train_chains_matches_train_grid(roots):
    specs = grid_specs(["mse", "ssim+ld"], [0.01, 0.1], finetune=True, anchor=0.1)
    with pytest.raises(ValueError, match="jobs"):
        studies.train_chains(specs, "smoke", jobs=0)
    grid = studies.train_chains(specs, "smoke", jobs=2, train={"steps": 2}, finetune_steps=3)
    assert grid["status"].tolist() == ["reused"] * 4, "every run was trained by the workers"
    configs = [json.loads((Path(run) / "config.json").read_text()) for run in grid["run"]]
    assert [(c["objective"], c["lmbda"], c["steps"]) for c in configs] == [
        ("mse", 0.1, 2), ("mse", 0.01, 3), ("ssim+ld", 0.01, 3), ("ssim+ld", 0.1, 3)]
    assert configs[1]["init_checkpoint"] == grid["model"][0] and configs[2]["init_checkpoint"] == grid["model"][1]


def test_finetune_needs_the_mse_run_first(roots):
    with pytest.raises(ValueError, match="put that MSE run earlier"):
        studies.train_grid([RunSpec("proxy:vmaf", 0.01, finetune=True)], "smoke", finetune_steps=2, progress=False)


def test_tiles_and_image_level_proxy_score():
    img = np.arange(130 * 200 * 3, dtype=np.uint32).reshape(130, 200, 3).astype(np.uint8)
    tiles = studies.tile_batch(img, 64)
    assert tiles.shape == (2 * 3, 3, 64, 64)
    assert torch.equal(tiles[4], torch.from_numpy(img[64:128, 64:128]).permute(2, 0, 1).float() / 255)

    class MeanDiff(torch.nn.Module):  # a stand-in proxy whose tile scores are easy to predict
        patch_size = 64

        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, x, x_hat):
            return self.w * (x - x_hat).abs().mean(dim=(1, 2, 3)) * 255

    dist = img.copy()
    dist[:64, :64] = dist[:64, :64] // 2
    out = studies.image_proxy_score(MeanDiff(), img, dist)
    expected = np.abs(img[:64, :64].astype(float) - dist[:64, :64]).mean() / 6
    assert out["tile"] == 64 and len(out["tiles"]) == 6 and out["score"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="smaller than one"):
        studies.tile_batch(img[:32], 64)


def test_runtime_tables_normalise_by_the_point_nearest_2_bpp():
    times = pd.DataFrame({
        "codec": ["a"] * 6, "device": ["cpu"] * 6, "image": ["x", "y"] * 3,
        "point": ["p1", "p1", "p2", "p2", "p3", "p3"],
        "bpp": [0.1, 0.1, 0.5, 0.5, 1.9, 2.1], "encode_ms": [10, 20, 30, 30, 60, 60], "decode_ms": [1.0] * 6})
    table = studies.runtime_table(times)
    assert table.loc[0, "encode_ms"] == pytest.approx(35) and table.loc[0, "mean_bpp"] == pytest.approx(0.8667, 1e-3)
    norm = studies.normalised_encode_times(times)
    assert norm["encode_norm"].tolist() == pytest.approx([0.25, 0.5, 1.0])
    assert norm["reference_bpp"].iloc[0] == pytest.approx(2.0)


def test_time_codec_measures_every_point():
    class Copy:
        name, points = "copy", [1, 2]

        def encode(self, img, point):
            return img.tobytes()[: point * 100]

        def decode(self, data, point):
            return np.zeros((4, 4, 3), np.uint8)

    times = studies.time_codec(Copy(), {"im": np.zeros((10, 10, 3), np.uint8)}, repeats=2)
    assert times["bpp"].tolist() == [8.0, 16.0] and (times["encode_ms"] >= 0).all()
    with pytest.raises(ValueError, match="repeats"):
        studies.time_codec(Copy(), {}, repeats=0)


def test_table_layouts_from_bd_values():
    bd = pd.DataFrame({"vmaf": [-10.0, -20.0, 5.0, 7.0], "ssim": [1.0, 3.0, np.nan, 2.0]},
                      index=pd.MultiIndex.from_tuples([("B", "i1"), ("B", "i2"), ("C", "i1"), ("C", "i2")],
                                                      names=["codec", "image"]))
    from proxiqa_lab.evaluation import bd_summary

    summary = bd_summary(bd)
    table = studies.table_iv(summary, {"B": "B (x)", "C": "C (y)", "missing": "z"}, ["vmaf", "ssim"])
    assert list(table.columns) == ["B (x)", "C (y)"] and list(table.index) == ["VMAF BD-rate", "SSIM BD-rate"]
    assert table.loc["VMAF BD-rate", "B (x)"] == -15 and table.loc["SSIM BD-rate", "C (y)"] == 2
    wide = studies.table_i(studies.RDStudy(df=pd.DataFrame(), bd=bd, summary=summary, baseline="A"))
    assert wide.loc["i2", ("C", "vmaf")] == 7 and list(wide.columns.get_level_values(0).unique()) == ["B", "C"]
    records = studies.summary_records(summary)
    assert records[0]["codec"] == "B" and records[0]["vmaf_mean"] == -15 and math.isnan(records[1]["ssim_std"])


def test_matched_point_and_crop():
    df = pd.DataFrame({"codec": ["c"] * 3, "image": ["i"] * 3, "point": [1, 2, 3], "bpp": [0.1, 0.3, 1.0]})
    assert studies.matched_point(df, "c", "i", 0.25)["point"] == 2
    with pytest.raises(ValueError, match="no rows"):
        studies.matched_point(df, "c", "other", 0.25)
    img = np.arange(100 * 60 * 3).reshape(100, 60, 3)
    assert studies.crop(img, 40, center=(1.0, 0.0)).shape == (40, 40, 3)
    assert studies.crop(img, 40, center=(1.0, 0.0))[0, 0, 0] == img[60, 0, 0]
    assert studies.crop(img, 500).shape == (60, 60, 3)


def test_eval_images_fall_back_to_labelled_samples(tmp_path):
    with pytest.warns(studies.SampleImagesWarning, match="proxiqa-lab data fetch kodak"):
        images, source = studies.eval_images("kodak", 2, root=str(tmp_path))
    assert len(images) == 2 and "not Kodak" in source
    with pytest.raises(Exception, match="kodak"):
        studies.eval_images("kodak", 2, root=str(tmp_path), fallback=False)
    with pytest.raises(ValueError, match="count"):
        studies.eval_images("kodak", 0)


def test_figures_save_png_and_svg(tmp_path):
    log = pd.DataFrame({"step": [1, 2, 3], "true_mean": [1, 2, 3], "true_std": [0.1] * 3,
                        "proxy_mean": [3, 2, 1], "proxy_std": [0.2] * 3})
    fig = figures.proxy_vs_true({"a": log, "b": log})
    paths = figures.save_figure(fig, tmp_path, "fig7")
    assert [p.suffix for p in paths] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in paths)
    table = pd.DataFrame({"curve": ["x", "x", "y", "y"], "step": [1, 2, 1, 2], "bd_rate_mean": [1, 2, 3, 4],
                          "bd_rate_std": [0.1] * 4})
    assert len(figures.metric_vs_steps(table, lr_drop_step=1).axes[0].lines) >= 3


def test_image_row_wraps_many_images():
    """Fig. 8 holds a dozen codecs: they wrap onto rows of at most ``columns``, as even as they go, and the
    spare panels stay blank."""
    crops = {f"codec {i}": np.full((8, 8, 3), i * 20, dtype=np.uint8) for i in range(13)}
    fig = figures.image_row(crops, {"codec 1": "0.3 bpp"})
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 14 and len(shown) == 13, "the source and 12 codecs: rows of 7 and 6, not an orphan"
    assert [ax.get_title() for ax in shown] == list(crops)
    eight = dict(list(crops.items())[:8])
    assert len(figures.image_row(eight, columns=6).axes) == 8, "eight in rows of at most six: two rows of four"
    assert len(figures.image_row(eight, columns=8).axes) == 8 and figures.image_row(eight, columns=8).get_figwidth() \
        > figures.image_row(eight, columns=6).get_figwidth(), "eight fit one row of eight"
    assert len(figures.image_row(dict(list(crops.items())[:2])).axes) == 2, "two images: one row of two"
