r"""Training losses of the paper, eqs. (6)-(14).

Scale convention: images are tensors in [0, 1] and the pixel loss is measured on that
scale. CompressAI and the reference TensorFlow code instead multiply the MSE by
:math:`255^2`, so a CompressAI/TF ``lmbda`` equals ``lmbda / 255**2`` here: CompressAI's
MSE qualities 1..8 (``lmbda`` = 0.0018 ... 0.0483) correspond to ``lmbda`` ~ 117 ... 3141
in :func:`rd_loss`. :data:`MSE_SCALE_255` holds that factor. The proxy loss (9) is in the
metric's own units (0..100 for VMAF, 0..1 for SSIM), so the balance between proxy and
pixel terms in eq. (10) depends on the metric and on this convention.

Rates are in bits per pixel (bpp) of the input image, as in eq. (6).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

__all__ = [
    "DISTANCES",
    "MSE_SCALE_255",
    "metric_loss",
    "pixel_loss",
    "proxy_loss",
    "rate_loss",
    "rd_loss",
    "slope_loss",
    "ssim_ld_loss",
    "ssim_loss",
    "total_loss",
]

#: Pixel distances :math:`d` allowed in eq. (7).
DISTANCES = ("mse", "mae")

#: Factor between CompressAI's distortion (MSE on the 0..255 scale) and this module's (0..1).
MSE_SCALE_255 = 255.0**2


def rate_loss(likelihoods: Mapping[str, Tensor] | Iterable[Tensor] | Tensor, num_pixels: int) -> Tensor:
    r"""Rate :math:`\mathcal{L}_r = -\log_2 p_{\hat y}(\hat y)` in bits per pixel, eq. (6).

    Args:
        likelihoods: the model's ``out["likelihoods"]`` (a dict such as ``{"y": ..., "z": ...}``),
            a list of tensors, or one tensor.
        num_pixels: pixels in the batch, ``N * H * W``.
    """
    if isinstance(num_pixels, bool) or not isinstance(num_pixels, numbers.Integral) or num_pixels < 1:
        raise ValueError(f"num_pixels must be a positive integer (N * H * W), got {num_pixels!r}")
    if isinstance(likelihoods, Tensor):
        likelihoods = [likelihoods]
    elif isinstance(likelihoods, Mapping):
        likelihoods = list(likelihoods.values())
    else:
        likelihoods = list(likelihoods)
    if not likelihoods or not all(isinstance(p, Tensor) for p in likelihoods):
        raise ValueError("likelihoods must be a tensor, or a non-empty dict or list of tensors")
    bits = sum(torch.log(p).sum() for p in likelihoods) / -math.log(2)
    return bits / num_pixels


def pixel_loss(x: Tensor, x_hat: Tensor, d: str = "mse") -> Tensor:
    r"""Pixel loss :math:`\mathcal{L}_d = d(x - \hat x)`, eq. (7): mean squared ("mse") or
    mean absolute ("mae") error, on the [0, 1] scale."""
    _check_pair(x, x_hat)
    _check_distance(d)
    diff = x - x_hat
    return diff.pow(2).mean() if d == "mse" else diff.abs().mean()


def rd_loss(rate: Tensor, pixel: Tensor, lmbda: float) -> Tensor:
    r"""Rate-distortion loss :math:`\lambda \mathcal{L}_d + \mathcal{L}_r`, eq. (8)."""
    _check_lmbda(lmbda)
    return lmbda * pixel + rate


def proxy_loss(m_hat: Tensor, m_bar: float, absolute: bool = False) -> Tensor:
    r"""Proxy loss :math:`\mathcal{L}_p = \bar M - \hat M(x, \hat x)`, eq. (9), averaged over the batch.

    Args:
        m_hat: the ProxIQA network's scores, (N,).
        m_bar: the metric's upper bound (100 for VMAF, 1 for SSIM).
        absolute: :math:`|\bar M - \hat M|`, as the released code takes it: a score above
            :math:`\bar M` is then penalised instead of rewarded.
    """
    if isinstance(m_bar, bool) or not isinstance(m_bar, numbers.Real) or not math.isfinite(m_bar):
        raise ValueError(f"m_bar must be a finite number (the metric's upper bound), got {m_bar!r}")
    _check_tensor(m_hat, "m_hat")
    gap = m_bar - m_hat
    return (gap.abs() if absolute else gap).mean()


def total_loss(rate: Tensor, pixel: Tensor, proxy: Tensor, lmbda: float, alpha: float) -> Tensor:
    r"""Total codec loss :math:`\lambda[\alpha \mathcal{L}_p + (1 - \alpha)\mathcal{L}_d] + \mathcal{L}_r`, eq. (10)."""
    _check_lmbda(lmbda)
    _check_alpha(alpha)
    return lmbda * (alpha * proxy + (1 - alpha) * pixel) + rate


def metric_loss(m_hat: Tensor, m: Tensor) -> Tensor:
    r"""Metric loss :math:`\|\hat M(x, \hat x) - M(x, \hat x)\|_2^2`, eq. (11), as a mean over the batch.

    Args:
        m_hat: the ProxIQA network's scores, (N,).
        m: the true metric scores, (N,) (a tensor, array or list; moved to ``m_hat``'s device).
    """
    _check_tensor(m_hat, "m_hat")
    m = torch.as_tensor(m, dtype=m_hat.dtype, device=m_hat.device)
    if m.shape != m_hat.shape:
        raise ValueError(f"m_hat and m must have the same shape, got {tuple(m_hat.shape)} and {tuple(m.shape)}")
    return (m_hat - m).pow(2).mean()


def slope_loss(m_hat: Tensor, m_hat_probe: Tensor, m: Tensor, m_probe: Tensor) -> Tensor:
    r"""Slope term of the proxy step: :math:`\|(\hat M' - \hat M) - (M' - M)\|_2^2`, batch mean.

    Eq. (11) fits the proxy's *level*; the codec uses only its *slope*. For pairs that share the
    reference and differ only in the reconstruction (a reconstruction and a perturbed copy of it,
    ``proxiqa_lab.training.proxy_batch``), this asks the proxy's change to equal the true change.

    Args:
        m_hat, m_hat_probe: the proxy's scores of the reconstructions and of their probes, (N,).
        m, m_probe: the true scores of the same pairs, (N,).
    """
    for name, t in (("m_hat", m_hat), ("m_hat_probe", m_hat_probe), ("m", m), ("m_probe", m_probe)):
        _check_tensor(t, name)
    if not (m_hat.shape == m_hat_probe.shape == m.shape == m_probe.shape):
        raise ValueError(f"slope_loss needs four tensors of one shape, got {[tuple(t.shape) for t in (m_hat, m_hat_probe, m, m_probe)]}")
    return ((m_hat_probe - m_hat) - (m_probe - m)).pow(2).mean()


def ssim_loss(x: Tensor, x_hat: Tensor) -> Tensor:
    r""":math:`\mathcal{L}_{SSIM} = 1 - \mathrm{SSIM}(x, \hat x)`, eq. (14), averaged over the batch."""
    from proxiqa_lab.metrics.differentiable import ssim

    _check_pair(x, x_hat)
    return 1 - ssim(x, x_hat).mean()


def ssim_ld_loss(x: Tensor, x_hat: Tensor, rate: Tensor, lmbda: float, alpha: float, d: str = "mse") -> Tensor:
    r""":math:`\lambda[\alpha \mathcal{L}_{SSIM} + (1 - \alpha)\mathcal{L}_d] + \mathcal{L}_r`, eq. (13):
    eq. (10) with the true SSIM loss in place of the proxy (the paper's ablation)."""
    _check_lmbda(lmbda)
    _check_alpha(alpha)
    return lmbda * (alpha * ssim_loss(x, x_hat) + (1 - alpha) * pixel_loss(x, x_hat, d)) + rate


def _check_lmbda(lmbda) -> None:
    if isinstance(lmbda, bool) or not isinstance(lmbda, numbers.Real) or not (math.isfinite(lmbda) and lmbda > 0):
        raise ValueError(f"lmbda must be a finite number > 0, got {lmbda!r}")


def _check_alpha(alpha) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 <= alpha <= 1:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")


def _check_distance(d) -> None:
    if d not in DISTANCES:
        raise ValueError(f"d must be one of {DISTANCES}, got {d!r}")


def _check_tensor(t, name: str) -> None:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} must be a tensor, got {type(t).__name__}")


def _check_pair(x, x_hat) -> None:
    _check_tensor(x, "x")
    _check_tensor(x_hat, "x_hat")
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
