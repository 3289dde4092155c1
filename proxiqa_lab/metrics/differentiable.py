"""Differentiable metrics for training losses: SSIM and MS-SSIM (eqs. 13, 14) from pytorch-msssim,
and VMAF / VMAF-NEG from vmaf-torch on the exact luma libvmaf sees (:func:`vmaf`).

The SSIM and MS-SSIM here are *not* the numbers ``proxiqa_lab.metrics.score`` reports. They differ from
libvmaf's ``float_ssim`` / ``float_ms_ssim`` in what they look at and how:

* they are computed on the R, G and B channels in [0, 1] (``data_range=1``) and averaged over
  the channels, while libvmaf scores the Y plane of ffmpeg's yuv444p conversion only;
* they take float inputs (no rounding to 8 bits);
* SSIM is computed at full resolution, while libvmaf's float_ssim first down-scales images
  by max(1, round(min(H, W) / 256)) (by 2 for Kodak's 768x512; not at all for 128 px patches);
* pytorch-msssim uses a separable 11-tap Gaussian window (sigma 1.5) over the valid region
  (no border padding) and 2x2 average pooling between MS-SSIM scales; libvmaf's code (derived
  from the IQA library) uses the same 5 scale weights but handles borders and down-sampling
  between scales its own way.

Measured by ``python benchmarks/metrics_speed.py`` (reports/benchmarks/metrics_speed.md) on
48 random Kodak 256x256 crops vs Pillow JPEG at qualities 5..90: the differentiable values
are lower (chroma errors count here), SSIM by 0.030 on average (at most 0.060), MS-SSIM by
0.017 (at most 0.049); Spearman rank correlation with libvmaf 0.975 (SSIM), 0.955 (MS-SSIM).
``tests/test_metrics.py`` checks the gap stays below 0.1 and the ranking agrees on its pairs.

pytorch-msssim's MS-SSIM asserts that the smaller image side exceeds ``(win_size - 1) * 16``
(160 px with the default 11-tap window), whatever the number of scales. For 128x128 patches
pass ``win_size=7`` (needs > 96 px); ``ms_ssim`` raises a clear error otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from pytorch_msssim import ms_ssim as _ms_ssim
from pytorch_msssim import ssim as _ssim

from proxiqa_lab.errors import MetricError

#: MS-SSIM scale weights of Wang et al. (2003), also pytorch-msssim's and libvmaf's.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _check(x: torch.Tensor, x_hat: torch.Tensor, name: str, min_side: int) -> None:
    if not isinstance(x, torch.Tensor) or not isinstance(x_hat, torch.Tensor):
        raise MetricError(f"{name} expects torch tensors, got {type(x).__name__} and {type(x_hat).__name__}")
    if x.ndim != 4 or x.shape[1] != 3 or x.shape != x_hat.shape:
        raise MetricError(
            f"{name} expects two tensors (N, 3, H, W) of the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )
    if min(x.shape[-2:]) < min_side:
        raise MetricError(f"{name} needs images of at least {min_side} px a side, got {x.shape[-1]}x{x.shape[-2]}")


def ssim(x: torch.Tensor, x_hat: torch.Tensor, win_size: int = 11) -> torch.Tensor:
    """Per-image SSIM of (N, 3, H, W) tensors in [0, 1] (RGB mean), shape (N,). Used by eq. (14)."""
    _check(x, x_hat, "ssim", win_size)
    return _ssim(x, x_hat, data_range=1.0, size_average=False, win_size=win_size)


def ms_ssim(
    x: torch.Tensor,
    x_hat: torch.Tensor,
    weights: Sequence[float] = MS_SSIM_WEIGHTS,
    win_size: int = 11,
) -> torch.Tensor:
    """Per-image MS-SSIM of (N, 3, H, W) tensors in [0, 1] (RGB mean), shape (N,).

    Args:
        x: reference images.
        x_hat: reconstructions.
        weights: one exponent per scale (default: the 5 of Wang et al.).
        win_size: odd Gaussian window size; pytorch-msssim needs the smaller side to exceed
            ``(win_size - 1) * 16`` px (use 7 for 128x128 patches).
    """
    min_side = (win_size - 1) * 16 + 1
    _check(x, x_hat, "ms_ssim", min_side)
    if win_size % 2 != 1:
        raise MetricError(f"win_size must be odd, got {win_size}")
    if len(weights) < 1:
        raise MetricError("weights must hold one value per scale, got none")
    return _ms_ssim(x, x_hat, data_range=1.0, size_average=False, win_size=win_size, weights=list(weights))


# ----------------------------------------------------------------------------------------- VMAF
#: ffmpeg's ``format=yuv444p`` luma from 8-bit RGB (swscale, BT.601 limited range), exactly:
#: ``Y = (8414 R + 16519 G + 3208 B + 540928) >> 15``. Checked against ffmpeg for all 2**24 colours.
LUMA_COEFFS = (8414, 16519, 3208)
LUMA_OFFSET = 540928
LUMA_SHIFT = 15
#: Smallest side vmaf-torch scores. An undistorted image scores 97.42-97.43 from 17 px up here,
#: while libvmaf's score is meaningful from 33 px only (``METRICS["vmaf"].min_size``).
VMAF_MIN_SIZE = 17

_VMAF_MODULES: dict = {}


def _straight_through(value: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """``exact`` in the forward pass, the gradient of ``value`` in the backward pass."""
    return value + (exact - value).detach()


def luma(x: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """The Y plane libvmaf scores: ffmpeg's ``format=yuv444p`` of the 8-bit image, (N, 1, H, W) on 0..255.

    Args:
        x: RGB (N, 3, H, W) in [0, 1]; values outside are clamped, as saving to 8 bits would.
        quantize: round to 8-bit RGB and to integer Y exactly as ffmpeg does, with straight-through
            gradients (the rounding has none); ``False`` gives the unrounded luma.
    """
    x = x.clamp(0, 1) * 255.0
    if quantize:
        x = _straight_through(x, torch.round(x))
    r, g, b = (c * x[:, i : i + 1] for i, c in enumerate(LUMA_COEFFS))
    y = (r + g + b + LUMA_OFFSET) / 2**LUMA_SHIFT
    if quantize:
        return _straight_through(y - 0.5, torch.floor(y))
    return y - 0.5  # the centre of ffmpeg's integer bin


def _vmaf_module(neg: bool, device: torch.device):
    key = (bool(neg), str(device))
    if key not in _VMAF_MODULES:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            from vmaf_torch import VMAF

        module = VMAF(temporal_pooling=False, enable_motion=False, clip_score=False, NEG=bool(neg))
        _VMAF_MODULES[key] = module.to(device).eval().requires_grad_(False)
    return _VMAF_MODULES[key]


def vmaf(x: torch.Tensor, x_hat: torch.Tensor, neg: bool = False, quantize: bool = True) -> torch.Tensor:
    """Differentiable VMAF v0.6.1 (or v0.6.1neg) of still pictures, per image, with gradients to ``x_hat``.

    vmaf-torch's port of libvmaf (motion 0, as for a one-frame video) on the exact Y plane that
    the kit's libvmaf scores see (:func:`luma`). Scores are **not** clipped to [0, 100]:
    libvmaf clips, which leaves no gradient, and enhancement (sharpening, contrast stretch) can
    score above 100 here where libvmaf says 100. The ``direct:*`` objectives clip the score
    at the top themselves (see :mod:`proxiqa_lab.training.objectives`).

    Args:
        x: reference RGB (N, 3, H, W) in [0, 1].
        x_hat: reconstruction, same shape (clamped to [0, 1]).
        neg: VMAF-NEG (no enhancement gain) instead of VMAF.
        quantize: score the 8-bit image (straight-through rounding), as libvmaf does.

    Returns:
        (N,) float32 scores.
    """
    _check(x, x_hat, "vmaf", VMAF_MIN_SIZE)
    for name, t in (("x", x), ("x_hat", x_hat)):
        if not torch.isfinite(t).all():
            raise MetricError(f"vmaf: {name} holds NaN or Inf values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        hint = " (it looks like 0..255; divide by 255)" if hi > 2 else ""
        raise MetricError(f"vmaf expects the reference in [0, 1], got values in [{lo:.3g}, {hi:.3g}]{hint}")
    mean = float(x_hat.detach().mean())
    if mean > 2:  # values outside [0, 1] are clamped, as an untrained codec's often are; a mean this high is not that
        raise MetricError(f"vmaf expects the reconstruction in [0, 1] (it is clamped there), got a mean of "
                          f"{mean:.3g}: it looks like 0..255; divide by 255")
    module = _vmaf_module(neg, x.device)
    y_ref = luma(x.detach().float(), quantize)
    y_dist = luma(x_hat.float(), quantize)
    return module(y_ref, y_dist).reshape(-1)


def ssim_luma(x: torch.Tensor, x_hat: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """Differentiable SSIM of the Y plane libvmaf scores (:func:`luma`), per image, (N,).

    libvmaf's float_ssim on images of up to 383 px a side (no down-scaling: 128² training
    patches): 11-tap Gaussian window (sigma 1.5) over the valid region, K = (0.01, 0.03).
    """
    _check(x, x_hat, "ssim_luma", 11)
    return _ssim(luma(x.detach().float(), quantize), luma(x_hat.float(), quantize), data_range=255.0,
                 size_average=False)


def vmaf_neg(x: torch.Tensor, x_hat: torch.Tensor, quantize: bool = True) -> torch.Tensor:
    """:func:`vmaf` with ``neg=True``: VMAF v0.6.1neg (no enhancement gain)."""
    return vmaf(x, x_hat, neg=True, quantize=quantize)


#: The kit's true metrics that have a differentiable counterpart on the same luma: the exact
#: gradient of ``direct:*`` objectives and of the proxy-gradient diagnostic.
EXACT = {"vmaf": vmaf, "vmaf_neg": vmaf_neg, "ssim": ssim_luma}


def exact(metric: str):
    """The differentiable counterpart of true metric ``metric`` (:data:`EXACT`), or ``None``."""
    return EXACT.get(metric)
