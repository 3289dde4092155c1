"""Differentiable SSIM and MS-SSIM for training losses (eqs. 13, 14), from pytorch-msssim.

These are *not* the numbers ``proxiqa_lab.metrics.score`` reports. They differ from
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
