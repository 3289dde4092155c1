"""Tests of proxiqa_lab.metrics: the ffmpeg/libvmaf engine, its batching, inputs and errors."""

from __future__ import annotations

import io
import json
import re
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from proxiqa_lab.cli import main as cli_main
from proxiqa_lab.data import to_tensor
from proxiqa_lab.errors import MetricError
from proxiqa_lab.metrics import METRICS, PSNR_CAP_DB, reflect_pad, score
from proxiqa_lab.metrics import differentiable as D
from proxiqa_lab.metrics.engine import ffmpeg_exe, filter_graph

ALL = tuple(METRICS)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))


@pytest.fixture
def pairs(photo):
    """Four different 192x192 crops of the photo, JPEG-compressed at four qualities."""
    refs = np.stack([photo[y : y + 192, x : x + 192] for y, x in [(0, 0), (60, 250), (300, 40), (310, 300)]])
    dists = np.stack([jpeg(r, q) for r, q in zip(refs, (8, 25, 50, 85))])
    return refs, dists


def save_png(path, img):
    Image.fromarray(img).save(path)
    return path


def ffmpeg_on_pngs(ref_png, dist_png, graph: str, cwd) -> None:
    """The released code's way: one ffmpeg process per pair, reading PNG files."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(dist_png), "-i", str(ref_png),
           "-filter_complex", graph, "-f", "null", "-"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=cwd)


# ---------------------------------------------------------------- batching is exact
def test_batched_equals_single_pair(pairs):
    refs, dists = pairs
    batched = score(refs, dists, ALL)
    for i in range(len(refs)):
        alone = score(refs[i], dists[i], ALL)
        for m in ALL:
            assert batched[m][i] == alone[m][0], (m, i)


def test_batched_vmaf_equals_plain_one_frame_libvmaf(pairs, tmp_path):
    """No motion option at all, one PNG pair per ffmpeg call: the still-picture reference value."""
    refs, dists = pairs
    batched = score(refs, dists, ("vmaf", "vmaf_neg", "ssim", "ms_ssim"))
    for i in range(len(refs)):
        ref_png, dist_png = save_png(tmp_path / f"r{i}.png", refs[i]), save_png(tmp_path / f"d{i}.png", dists[i])
        graph = (
            "[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];[d][r]libvmaf=log_fmt=json:log_path=v.json:"
            "model='version=vmaf_v0.6.1\\:name=vmaf|version=vmaf_v0.6.1neg\\:name=vmaf_neg':"
            "feature='name=float_ssim|name=float_ms_ssim'"
        )
        ffmpeg_on_pngs(ref_png, dist_png, graph, tmp_path)
        frame = json.loads((tmp_path / "v.json").read_text())["frames"][0]["metrics"]
        assert frame["vmaf"] == batched["vmaf"][i]
        assert frame["vmaf_neg"] == batched["vmaf_neg"][i]
        assert frame["float_ssim"] == batched["ssim"][i]
        assert frame["float_ms_ssim"] == batched["ms_ssim"][i]


def test_motion_would_leak_without_force_zero(pairs, tmp_path):
    """Why motion is forced to 0: scoring the pairs as a plain video changes VMAF after frame 0."""
    refs, dists = pairs
    raw = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "192x192", "-framerate", "25"]
    (tmp_path / "r.rgb").write_bytes(refs.tobytes())
    (tmp_path / "d.rgb").write_bytes(dists.tobytes())
    graph = "[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];[d][r]libvmaf=log_fmt=json:log_path=v.json"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", *raw, "-i", "d.rgb", *raw, "-i", "r.rgb",
           "-filter_complex", graph, "-f", "null", "-"]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=tmp_path)
    plain = [f["metrics"]["vmaf"] for f in json.loads((tmp_path / "v.json").read_text())["frames"]]
    ours = score(refs, dists, ("vmaf",))["vmaf"]
    assert plain[0] == ours[0]
    assert not np.allclose(plain[1:], ours[1:], atol=1e-3)


# ---------------------------------------------------------------- PSNR (eq. 12)
def test_psnr_avg_matches_ffmpeg_psnr_filter_and_numpy(pairs, tmp_path):
    refs, dists = pairs
    ours = score(refs, dists, ("psnr_avg",))["psnr_avg"]
    for i in range(len(refs)):
        ref_png, dist_png = save_png(tmp_path / "r.png", refs[i]), save_png(tmp_path / "d.png", dists[i])
        graph = "[0:v]format=yuv444p[d];[1:v]format=yuv444p[r];[d][r]psnr=stats_file=stats.txt"
        ffmpeg_on_pngs(ref_png, dist_png, graph, tmp_path)
        stats = dict(re.findall(r"psnr_([yuv]):([0-9.]+)", (tmp_path / "stats.txt").read_text()))
        from_log = (4 * float(stats["y"]) + float(stats["u"]) + float(stats["v"])) / 6
        assert ours[i] == pytest.approx(from_log, abs=0.01)  # the stats file prints 2 decimals

        # numpy on the yuv444p planes ffmpeg makes from the PNGs
        planes = []
        for png in (ref_png, dist_png):
            out = subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-i", str(png), "-vf", "format=yuv444p",
                                  "-f", "rawvideo", "-"], check=True, capture_output=True).stdout  # fmt: skip
            planes.append(np.frombuffer(out, np.uint8).reshape(3, 192, 192).astype(np.float64))
        mse = ((planes[0] - planes[1]) ** 2).mean(axis=(1, 2))
        psnr = 10 * np.log10(255.0**2 / mse)
        assert ours[i] == pytest.approx((4 * psnr[0] + psnr[1] + psnr[2]) / 6, abs=1e-5)


def test_psnr_alone_skips_libvmaf():
    assert "libvmaf" not in filter_graph(("psnr_avg",), 2)
    assert "psnr" not in filter_graph(("vmaf",), 2)


# ---------------------------------------------------------------- behaviour of the numbers
def test_identical_images_get_max_scores(pairs, photo):
    refs, dists = pairs
    same = score(refs, refs, ALL)
    worse = score(refs, dists, ALL)
    assert np.all(same["psnr_avg"] == PSNR_CAP_DB)
    for m in ("ssim", "ms_ssim"):
        assert np.all(same[m] == 1.0), m
    np.testing.assert_allclose(same["vif"], 1.0, atol=1.5e-6)  # float_vif sums in float: 0.999999 happens
    # VMAF of an undistorted still picture (adm ~ vif ~ 1, motion = 0) is the model's ceiling, not 100
    for m in ("vmaf", "vmaf_neg"):
        assert np.ptp(same[m]) < 0.01 and np.all(worse[m] < same[m].min()), m
    assert np.all(worse["psnr_avg"] < PSNR_CAP_DB)


def test_monotonic_under_jpeg(photo):
    ref = photo[100:292, 100:292]
    qualities = (5, 15, 40, 90)
    res = score(np.stack([ref] * 4), np.stack([jpeg(ref, q) for q in qualities]), ALL)
    for m in ALL:
        assert np.all(np.diff(res[m]) > 0), (m, res[m])


# ---------------------------------------------------------------- inputs
def test_input_types_agree(pairs, tmp_path):
    refs, dists = pairs
    as_uint8 = score(refs, dists, ("vmaf", "psnr_avg"))
    as_tensor = score(to_tensor(refs), to_tensor(dists), ("vmaf", "psnr_avg"))
    paths_r = [save_png(tmp_path / f"r{i}.png", r) for i, r in enumerate(refs)]
    paths_d = [str(save_png(tmp_path / f"d{i}.png", d)) for i, d in enumerate(dists)]
    as_paths = score(paths_r, paths_d, ("vmaf", "psnr_avg"))
    for m in ("vmaf", "psnr_avg"):
        np.testing.assert_array_equal(as_uint8[m], as_tensor[m])
        np.testing.assert_array_equal(as_uint8[m], as_paths[m])


def test_tensor_is_rounded_like_png(pairs):
    refs, dists = pairs
    x = (to_tensor(dists) + 0.4 / 255).clamp(max=1)  # rounds back to the same uint8 values
    from_tensor, from_uint8 = score(refs, x, ("psnr_avg",)), score(refs, dists, ("psnr_avg",))
    np.testing.assert_array_equal(from_tensor["psnr_avg"], from_uint8["psnr_avg"])


def test_mixed_sizes_are_grouped(photo):
    refs = [photo[:64, :64], photo[:80, :48], photo[64:128, 64:128]]
    dists = [jpeg(r, 20) for r in refs]
    res = score(refs, dists, ("vmaf", "psnr_avg"))
    for i in range(3):
        alone = score(refs[i], dists[i], ("vmaf", "psnr_avg"))
        assert res["vmaf"][i] == alone["vmaf"][0] and res["psnr_avg"][i] == alone["psnr_avg"][0]


# ---------------------------------------------------------------- MS-SSIM of small patches
def test_ms_ssim_small_patches_need_explicit_padding(photo):
    ref, dist = photo[:128, :128], jpeg(photo[:128, :128], 20)
    with pytest.raises(MetricError, match="ms_ssim needs images at least 176x176.*ms_ssim_pad=True"):
        score(ref, dist, ("ms_ssim",))
    padded = score(ref, dist, ("ms_ssim", "vmaf"), ms_ssim_pad=True)
    explicit = score(reflect_pad(ref[None]), reflect_pad(dist[None]), ("ms_ssim",))
    assert reflect_pad(ref[None]).shape == (1, 176, 176, 3)
    assert padded["ms_ssim"][0] == explicit["ms_ssim"][0]
    assert padded["vmaf"][0] == score(ref, dist, ("vmaf",))["vmaf"][0]  # other metrics unpadded
    big_r, big_d = photo[:200, :200], jpeg(photo[:200, :200], 20)
    unpadded = score(big_r, big_d, ("ms_ssim",))["ms_ssim"]
    assert score(big_r, big_d, ("ms_ssim",), ms_ssim_pad=True)["ms_ssim"][0] == unpadded[0]


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "metric, size, message",
    [("vmaf", 32, "vmaf needs images at least 33x33"), ("vmaf_neg", 32, "at least 33x33"),
     ("vif", 15, "vif needs images at least 16x16"), ("ssim", 10, "at least 11x11"),
     ("ms_ssim", 175, "at least 176x176")],
)  # fmt: skip
def test_size_limits_raise_before_ffmpeg(metric, size, message, rng):
    img = rng.integers(0, 256, (size, size + 30, 3), dtype=np.uint8)
    with pytest.raises(MetricError, match=message):
        score(img, img, (metric,))


@pytest.mark.parametrize("metric, size", [("vmaf", 33), ("vif", 16), ("ssim", 11), ("psnr_avg", 1)])
def test_smallest_sizes_work(metric, size, rng):
    ref = rng.integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    dist = np.clip(ref.astype(int) + rng.integers(-20, 20, ref.shape), 0, 255).astype(np.uint8)
    assert np.all(np.isfinite(score(ref, dist, (metric,))[metric]))


def test_bad_inputs_raise_clear_errors(photo):
    ref = photo[:64, :64]
    with pytest.raises(MetricError, match="got 2 reference and 1 distorted"):
        score(np.stack([ref, ref]), ref)
    with pytest.raises(MetricError, match="'vmafx'; allowed: psnr_avg, ssim, ms_ssim, vif, vmaf, vmaf_neg"):
        score(ref, ref, ("vmafx",))
    with pytest.raises(MetricError, match="grayscale"):
        score(ref[..., 0], ref[..., 0])
    with pytest.raises(MetricError, match="pair 0: reference is 64x64 but distorted is 64x32"):
        score(ref, ref[:32])
    with pytest.raises(MetricError, match="must be uint8"):
        score(ref.astype(np.float32), ref)
    x = to_tensor(ref)
    with pytest.raises(MetricError, match="1 NaN/Inf"):
        bad = x.clone()
        bad[0, 0, 0, 0] = float("nan")
        score(x, bad)
    with pytest.raises(MetricError, match=r"in \[0, 1\], got \[0, 1.5\]; clamp first"):
        bad = x.clone()
        bad[0, 1, 2, 3] = 1.5
        score(x, bad)
    with pytest.raises(MetricError, match=r"\(N, 3, H, W\)"):
        score(x[:, :1], x[:, :1])


# ---------------------------------------------------------------- CLI
def test_cli_single_pair_json_and_table(photo, tmp_path, capsys):
    ref = save_png(tmp_path / "ref.png", photo[:128, :128])
    dist = save_png(tmp_path / "dist.png", jpeg(photo[:128, :128], 20))
    assert cli_main(["metrics", str(ref), str(dist), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = score(photo[:128, :128], jpeg(photo[:128, :128], 20), ("psnr_avg", "ssim", "vif", "vmaf", "vmaf_neg"))
    assert len(out) == 1 and out[0]["ref"] == str(ref) and out[0]["ms_ssim"] is None  # 128 px: does not apply
    for m, v in expected.items():
        assert out[0][m] == v[0]
    assert cli_main(["metrics", str(ref), str(dist), "--metrics", "vmaf,psnr_avg"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ref", "dist", "vmaf", "psnr_avg"] and f"{expected['vmaf'][0]:.4f}" in table[1]


def test_cli_pairs_csv(photo, tmp_path, capsys):
    rows = []
    for i, q in enumerate((10, 60)):
        crop = photo[i * 200 : i * 200 + 180, :180]
        save_png(tmp_path / f"r{i}.png", crop)
        save_png(tmp_path / f"d{i}.png", jpeg(crop, q))
        rows.append(f"r{i}.png,d{i}.png")
    (tmp_path / "pairs.csv").write_text("ref,dist\n" + "\n".join(rows) + "\n")
    assert cli_main(["metrics", "--pairs", str(tmp_path / "pairs.csv"), "--metrics", "ms_ssim,vmaf", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [set(o) for o in out] == [{"ref", "dist", "ms_ssim", "vmaf"}] * 2
    assert out[0]["vmaf"] < out[1]["vmaf"] and out[0]["ms_ssim"] < out[1]["ms_ssim"]
    assert cli_main(["metrics", "--pairs", str(tmp_path / "pairs.csv"), "--metrics", "nope"]) == 1
    assert "unknown metric" in capsys.readouterr().err


# ---------------------------------------------------------------- differentiable SSIM / MS-SSIM
def test_differentiable_per_image_and_gradients(pairs):
    refs, dists = pairs
    x, x_hat = to_tensor(refs), to_tensor(dists).requires_grad_(True)
    s, m = D.ssim(x, x_hat), D.ms_ssim(x, x_hat)
    assert s.shape == m.shape == (4,)
    assert torch.allclose(D.ssim(x, x), torch.ones(4)) and torch.allclose(D.ms_ssim(x, x), torch.ones(4))
    (s.sum() + m.sum()).backward()
    assert x_hat.grad is not None and torch.isfinite(x_hat.grad).all()


def test_differentiable_size_limits(photo):
    x = to_tensor(photo[:128, :128])
    with pytest.raises(MetricError, match="at least 161 px"):
        D.ms_ssim(x, x)
    assert D.ms_ssim(x, x * 0.9, win_size=7).shape == (1,)
    with pytest.raises(MetricError, match=r"\(N, 3, H, W\)"):
        D.ssim(x[:, :1], x[:, :1])


def test_differentiable_close_to_libvmaf(pairs):
    """RGB float (pytorch-msssim) vs luma uint8 (libvmaf): same ordering, gap below 0.1."""
    refs, dists = pairs
    true = score(refs, dists, ("ssim", "ms_ssim"))
    x, x_hat = to_tensor(refs), to_tensor(dists)
    for name, fn in (("ssim", D.ssim), ("ms_ssim", D.ms_ssim)):
        ours = fn(x, x_hat).numpy()
        assert np.abs(ours - true[name]).max() < 0.1, (name, ours, true[name])
        assert np.array_equal(np.argsort(ours), np.argsort(true[name])), name


def test_many_pairs_stay_paired():
    """Past 4,096 frames in one ffmpeg call the two inputs fall out of step; score() splits calls."""
    from proxiqa_lab.metrics import score

    rng = np.random.default_rng(1)
    base = rng.integers(0, 256, (16, 24, 24, 3), dtype=np.uint8)
    refs = base[rng.integers(0, 16, 4200)]
    psnr = score(refs, refs.copy(), metrics=("psnr_avg",))["psnr_avg"]
    assert psnr.shape == (4200,)
    assert np.all(psnr == 100.0)
