"""Inputs at the edges: many rows of one pair, images too small for VMAF, damaged pretraining caches,
and the size of the smoke profile's own proxy pretraining."""

from __future__ import annotations

import inspect
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from proxiqa_lab.cli import main as cli_main
from proxiqa_lab.errors import MetricError
from proxiqa_lab.metrics import METRICS, score


def save_png(path: Path, img: np.ndarray) -> Path:
    Image.fromarray(img).save(path)
    return path


@pytest.fixture
def pair(photo, rng, tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """A 48x64 crop and a noisy copy, saved as ref.png and dist.png in tmp_path."""
    ref = np.ascontiguousarray(photo[100:148, 200:264])
    dist = np.clip(ref + rng.normal(0, 8, ref.shape), 0, 255).astype(np.uint8)
    save_png(tmp_path / "ref.png", ref)
    save_png(tmp_path / "dist.png", dist)
    return ref, dist


# ---------------------------------------------------------------- metrics --pairs: memory bounded by distinct images
def test_pairs_read_each_file_once(pair, tmp_path, monkeypatch, capsys):
    import proxiqa_lab.data as data

    reads = Counter()
    load_image = data.load_image

    def counting(path):
        reads[Path(path).resolve()] += 1
        return load_image(path)

    monkeypatch.setattr(data, "load_image", counting)
    rows = 60
    (tmp_path / "pairs.csv").write_text("ref,dist\n" + "ref.png,dist.png\n./ref.png,dist.png\n" * (rows // 2))
    assert cli_main(["metrics", "--pairs", str(tmp_path / "pairs.csv"), "--metrics", "psnr_avg", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert dict(reads) == {(tmp_path / "ref.png").resolve(): 1, (tmp_path / "dist.png").resolve(): 1}
    expected = score(*pair, ("psnr_avg",))["psnr_avg"][0]
    assert len(out) == rows and all(row["psnr_avg"] == expected for row in out)


def test_pairs_are_scored_in_bounded_batches(pair, tmp_path, monkeypatch, capsys):
    import proxiqa_lab.cli.metrics as cli_metrics
    import proxiqa_lab.metrics as metrics

    calls = []

    def spy(refs, dists, names, **kwargs):
        calls.append(len(refs))
        return score(refs, dists, names, **kwargs)

    monkeypatch.setattr(metrics, "score", spy)
    monkeypatch.setattr(cli_metrics, "PAIRS_BATCH_BYTES", 3 * pair[0].nbytes)
    (tmp_path / "pairs.csv").write_text("ref,dist\n" + "ref.png,dist.png\n" * 10)
    assert cli_main(["metrics", "--pairs", str(tmp_path / "pairs.csv"), "--metrics", "psnr_avg", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert sum(calls) == 10 and max(calls) <= 3
    assert {row["psnr_avg"] for row in out} == {score(*pair, ("psnr_avg",))["psnr_avg"][0]}


def test_pairs_name_the_files_of_a_mismatched_pair(pair, tmp_path, capsys):
    save_png(tmp_path / "small.png", pair[1][:32])
    (tmp_path / "pairs.csv").write_text("ref,dist\nref.png,dist.png\nref.png,small.png\n")
    assert cli_main(["metrics", "--pairs", str(tmp_path / "pairs.csv"), "--metrics", "psnr_avg"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "ref.png is 64x48 but" in err and "small.png is 64x32" in err


# ---------------------------------------------------------------- VMAF of small images
@pytest.mark.parametrize("metric", ["vmaf", "vmaf_neg"])
@pytest.mark.parametrize("shape", [(17, 17), (32, 32), (32, 200), (200, 32)])
def test_vmaf_refuses_images_too_small_to_mean_anything(photo, metric, shape):
    crop = np.ascontiguousarray(photo[: shape[0], : shape[1]])
    with pytest.raises(MetricError, match=rf"{metric} needs images at least 33x33 px .*not meaningful"):
        score(crop, crop, (metric,))


def test_vmaf_of_the_smallest_accepted_images_is_the_large_image_value(photo):
    """From the minimum size up, an undistorted image scores what a large one does."""
    side = METRICS["vmaf"].min_size
    assert METRICS["vmaf_neg"].min_size == side
    crops = np.stack([photo[y : y + side, x : x + side] for y, x in [(0, 0), (60, 250), (300, 40), (310, 300)]])
    large = score(photo[100:356, 100:356], photo[100:356, 100:356], ("vmaf", "vmaf_neg"))
    small = score(crops, crops, ("vmaf", "vmaf_neg"))
    for m in ("vmaf", "vmaf_neg"):
        assert np.abs(small[m] - large[m][0]).max() < 0.1, (m, small[m], large[m])


def test_metrics_cli_skips_vmaf_below_its_minimum(photo, tmp_path, capsys):
    crop = np.ascontiguousarray(photo[:32, :64])
    save_png(tmp_path / "ref.png", crop)
    assert cli_main(["metrics", str(tmp_path / "ref.png"), str(tmp_path / "ref.png"), "--json"]) == 0
    captured = capsys.readouterr()
    row = json.loads(captured.out)[0]
    assert row["vmaf"] is None and row["vmaf_neg"] is None and row["psnr_avg"] == 100.0
    assert "vmaf" in captured.err and "skipped" in captured.err


# ---------------------------------------------------------------- pretrain --cache with a damaged database
PRETRAIN = ["pretrain", "--metric", "vmaf", "--dataset", "samples", "--patch-size", "40", "--patches-per-image", "1",
            "--kinds", "blur,noise", "--levels", "2", "--epochs", "1", "--device", "cpu", "--json"]  # fmt: skip


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """A database cache written by ``proxiqa-lab pretrain --cache``."""
    folder = tmp_path_factory.mktemp("cache")
    assert cli_main([*PRETRAIN, "--cache", str(folder / "db.npz"), "--out", str(folder / "proxy.pt")]) == 0
    return folder / "db.npz"


def damaged(cache: Path, folder: Path, **changes) -> Path:
    with np.load(cache) as npz:
        arrays = {k: npz[k].copy() for k in npz.files}
    for name, change in changes.items():
        change(arrays[name])
    path = folder / "damaged.npz"
    np.savez(path, **arrays)
    return path


def run_pretrain(cache: Path, out: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    rc = cli_main([*PRETRAIN, "--cache", str(cache), "--out", str(out)])
    return rc, capsys.readouterr().err.strip()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [("ref_index", 99, "ref_index 99, outside the 4 reference patches"),
     ("ref_index", -1, "ref_index -1, outside"),
     ("source", 4, "source 4, outside the 4 source images")],
)  # fmt: skip
def test_cache_with_an_index_out_of_range_is_refused(cache, tmp_path, capsys, name, value, message):
    path = damaged(cache, tmp_path, **{name: lambda a: a.__setitem__(3, value)})
    rc, err = run_pretrain(path, tmp_path / "proxy.pt", capsys)
    assert rc == 1 and len(err.splitlines()) == 1 and message in err and "is invalid" in err
    assert not (tmp_path / "proxy.pt").exists()


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [("all", 50.0, "training pairs score 50: a proxy cannot learn from one value"),
     ("all", 1e300, "scores 1e+300, not a vmaf value in [0, 100]"),
     ("held-out", np.nan, "scores nan, not a vmaf value"),
     ("held-out", -3.0, "scores -3, not a vmaf value")],
)  # fmt: skip
def test_cache_with_absurd_scores_saves_no_proxy(cache, tmp_path, capsys, where, value, message):
    """Every score set to ``value``, or that of one held-out pair (the CLI holds out 20 % of the sources, seed 0)."""
    from proxiqa_lab.training.pretrain import DistortionDatabase

    pair = DistortionDatabase.load(cache).split(0.2, seed=0)[1][0]
    change = (lambda s: s.fill(value)) if where == "all" else (lambda s: s.__setitem__(pair, value))
    rc, err = run_pretrain(damaged(cache, tmp_path, scores=change), tmp_path / "proxy.pt", capsys)
    assert rc == 1 and len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "proxy.pt").exists()


def test_a_proxy_without_a_held_out_fit_is_not_returned(cache, monkeypatch):
    """A proxy that predicts one value everywhere has no PLCC: pretraining refuses it."""
    from proxiqa_lab.errors import TrainingError
    from proxiqa_lab.models import ProxIQANet
    from proxiqa_lab.training.pretrain import DistortionDatabase, pretrain_proxy

    monkeypatch.setattr(ProxIQANet, "forward", lambda self, x, x_hat: self.fc.bias.expand(len(x)) + 0 * x.mean())
    with pytest.raises(TrainingError, match="no held-out fit .*predicts one value"):
        pretrain_proxy(DistortionDatabase.load(cache), epochs=1, device="cpu", progress=False)


# ---------------------------------------------------------------- the smoke profile's pretrained-proxy run
def test_smoke_pretrained_proxy_run_pretrains_small_with_progress(tmp_path, monkeypatch, capsys):
    from proxiqa_lab.data import sample_images
    from proxiqa_lab.training import make_config
    from proxiqa_lab.training import trainer as T
    from proxiqa_lab.training.pretrain import (RUN_PRETRAINING, build_distortion_database, load_pretrained_proxy,
                                               pretrain_proxy)

    sources = {f"{name}{i}": img[:128, 128 * i : 128 * (i + 1)].copy()
               for name, img in sample_images().items() for i in range(3)}  # fmt: skip
    monkeypatch.setattr(T, "resolve_data", lambda data, root: (sources, "test sources"))
    out = tmp_path / "run"
    out.mkdir()
    T.Trainer(make_config("smoke", objective="pretrained-proxy:vmaf", device="cpu"), out).build()

    size = RUN_PRETRAINING["smoke"]
    pairs = size["images"] * size["patches_per_image"] * (1 + 4 * size["levels"])
    assert size["images"] < len(sources) and pairs <= 500 and size["epochs"] <= 5  # seconds, not minutes
    info = load_pretrained_proxy(out / "pretrained_proxy.pt")[1]
    assert info["database"]["num_sources"] == size["images"] and info["report"]["epochs"] == size["epochs"]
    assert info["report"]["n_train"] + info["report"]["n_test"] == pairs
    err = capsys.readouterr().err
    assert "distorting" in err and "pretraining vmaf proxy" in err

    # lab (and course, which trains as lab) runs pretrain exactly as before: the functions' defaults
    lab = RUN_PRETRAINING["lab"]
    defaults = inspect.signature(build_distortion_database).parameters
    assert lab["images"] is None and lab["levels"] == defaults["levels"].default
    assert lab["patches_per_image"] == defaults["patches_per_image"].default
    assert lab["epochs"] == inspect.signature(pretrain_proxy).parameters["epochs"].default
