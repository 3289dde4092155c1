"""Tests of the differentiable VMAF (vmaf-torch on libvmaf's exact luma) and the ``direct:*`` objectives."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from proxiqa_lab.data import to_tensor
from proxiqa_lab.errors import MetricError
from proxiqa_lab.metrics import differentiable as D
from proxiqa_lab.metrics import score
from proxiqa_lab.metrics.engine import ffmpeg_exe
from proxiqa_lab.training import make_config, train

#: Largest |vmaf-torch - libvmaf| allowed on the pairs below. Measured by
#: benchmarks/differentiable_vmaf.py on Kodak codec outputs (reports/lab_science/differentiable_vmaf.md).
VMAF_TOL, VMAF_NEG_TOL = 0.5, 1.0


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.array(Image.open(buf).convert("RGB"))


@pytest.fixture(scope="module")
def pairs():
    """128² crops of a photo: JPEG at three qualities, a blur and noise."""
    from skimage import data

    photo = data.astronaut()
    crops = [photo[y : y + 128, x : x + 128] for y, x in [(0, 0), (100, 250), (300, 40), (330, 330), (200, 180)]]
    rng = np.random.default_rng(0)
    dists = [jpeg(crops[0], 5), jpeg(crops[1], 25), jpeg(crops[2], 70),
             np.array(Image.fromarray(crops[3]).filter(ImageFilter.GaussianBlur(1.2))),
             np.clip(crops[4] + rng.normal(0, 8, crops[4].shape), 0, 255).astype(np.uint8)]
    return np.stack(crops), np.stack(dists)


def test_luma_is_ffmpegs_yuv444p_y_plane():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    img[0, :, :] = np.arange(64)[:, None] * 4  # greys
    cmd = [ffmpeg_exe(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x64", "-i", "-",
           "-vf", "format=yuv444p", "-f", "rawvideo", "-"]  # fmt: skip
    y_ffmpeg = np.frombuffer(subprocess.run(cmd, input=img.tobytes(), capture_output=True, check=True).stdout,
                             np.uint8)[: 64 * 64].reshape(64, 64)
    y = D.luma(to_tensor(img))[0, 0].numpy()
    assert np.array_equal(y, y_ffmpeg.astype(np.float32))
    # unquantised luma sits within half a level of the integer plane
    assert np.abs(D.luma(to_tensor(img), quantize=False)[0, 0].numpy() - y_ffmpeg).max() <= 0.5 + 1e-4


def test_scores_match_libvmaf(pairs):
    refs, dists = pairs
    true = score(refs, dists, ("vmaf", "vmaf_neg"))
    x, x_hat = to_tensor(refs), to_tensor(dists)
    for neg, name, tol in ((False, "vmaf", VMAF_TOL), (True, "vmaf_neg", VMAF_NEG_TOL)):
        ours = D.vmaf(x, x_hat, neg=neg).numpy()
        assert ours.shape == (5,)
        assert np.abs(np.clip(ours, 0, 100) - true[name]).max() < tol, (name, ours, true[name])
    assert np.array_equal(np.argsort(D.vmaf(x, x_hat).numpy()), np.argsort(true["vmaf"]))


def test_gradients_flow_to_the_reconstruction(pairs):
    refs, dists = pairs
    x = to_tensor(refs)
    x_hat = to_tensor(dists).requires_grad_(True)
    D.vmaf(x, x_hat).sum().backward()
    grad = x_hat.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # VMAF sees luma only: the gradient is a multiple of the luma weights at every pixel
    both = (grad[:, 0] != 0) & (grad[:, 1] != 0)  # a channel clamped at 0 or 255 has no gradient
    assert both.float().mean() > 0.5
    assert torch.allclose(grad[:, 1][both] / grad[:, 0][both], torch.tensor(16519 / 8414), rtol=1e-4)
    # a small step along the gradient raises the score
    with torch.no_grad():
        before = D.vmaf(x, x_hat, quantize=False)
        after = D.vmaf(x, x_hat + 2e-3 * grad / grad.flatten(1).norm(dim=1)[:, None, None, None] * 128,
                       quantize=False)
    assert (after > before).all()


def test_enhancement_scores_above_100_unclipped(pairs):
    """libvmaf clips to [0, 100]; the differentiable score does not (the direct objectives clip it)."""
    refs, _ = pairs
    stretched = np.clip((refs.astype(float) - 128) * 1.3 + 128, 0, 255).astype(np.uint8)
    ours = D.vmaf(to_tensor(refs), to_tensor(stretched)).numpy()
    true = score(refs, stretched, ("vmaf",))["vmaf"]
    assert (ours > 100).any() and np.all(true <= 100)


def test_bad_input_gets_clear_errors(pairs):
    refs, dists = pairs
    x, x_hat = to_tensor(refs), to_tensor(dists)
    with pytest.raises(MetricError, match="looks like 0..255"):
        D.vmaf(x * 255, x_hat)
    with pytest.raises(MetricError, match="looks like 0..255"):
        D.vmaf(x, x_hat * 255)
    with pytest.raises(MetricError, match=r"\(N, 3, H, W\)"):
        D.vmaf(x[:, :1], x_hat[:, :1])
    with pytest.raises(MetricError, match="at least 17 px"):
        D.vmaf(x[..., :16, :16], x_hat[..., :16, :16])
    bad = x_hat.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(MetricError, match="NaN"):
        D.vmaf(x, bad)
    with pytest.raises(MetricError, match="torch tensors"):
        D.vmaf(refs, dists)


@pytest.mark.parametrize("objective", ["direct:vmaf", "direct:vmaf_neg"])
def test_direct_objectives_train_in_smoke(tmp_path, objective):
    run = train("smoke", out=tmp_path / "run", objective=objective, alpha=0.8, steps=4, log_every=1,
                checkpoint_every=2, progress=False, data="samples", device="cpu")
    log = run.log
    assert log["step"].tolist() == [1, 2, 3, 4]
    assert log["metric_true"].notna().all() and log["proxy_loss"].notna().all()
    assert log["metric_proxy"].isna().all()  # no proxy
    assert run.model_path is not None and run.proxy_path is None
    # the metric term is 100 - min(VMAF, 100): never below 0 (an untrained codec scores below 0 unclipped)
    assert (log["proxy_loss"] >= 0).all()


def test_direct_clips_at_the_top():
    """Above 100 the metric term has no gradient; below it, the term is 100 - VMAF."""
    from proxiqa_lab.training.objectives import codec_loss, parse_objective

    obj = parse_objective("direct:vmaf")
    x = torch.rand(2, 3, 32, 32)
    out = {"x_hat": x.clone().requires_grad_(True), "likelihoods": {"y": torch.full((2, 4, 2, 2), 0.5)}}
    terms = codec_loss(obj, x, out, lmbda=0.01, alpha=1.0)
    assert abs(float(terms["proxy"].detach()) - float((100 - terms["m_exact"].clamp(max=100)).mean())) < 1e-4


def test_direct_needs_an_exact_metric():
    with pytest.raises(ValueError, match="exact gradient"):
        make_config("smoke", objective="direct:ms_ssim")
    assert make_config("smoke", objective="direct:vmaf_neg").objective == "direct:vmaf_neg"
