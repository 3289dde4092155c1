"""Losses, eqs. (6)-(14): values against hand computations and CompressAI, and validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from proxiqa_lab.losses import (
    MSE_SCALE_255,
    metric_loss,
    pixel_loss,
    proxy_loss,
    rate_loss,
    rd_loss,
    ssim_ld_loss,
    ssim_loss,
    total_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_rate_loss_counts_bits_per_pixel():
    # p = 1/2 costs 1 bit and p = 1/4 costs 2 bits: 2*4*3*3 y-symbols and 2*4*1*1 z-symbols.
    likelihoods = {"y": torch.full((2, 4, 3, 3), 0.5), "z": torch.full((2, 4, 1, 1), 0.25)}
    num_pixels = 2 * 48 * 48
    expected = (72 * 1 + 8 * 2) / num_pixels
    assert rate_loss(likelihoods, num_pixels).item() == pytest.approx(expected, rel=1e-6)
    assert rate_loss(list(likelihoods.values()), num_pixels).item() == pytest.approx(expected, rel=1e-6)
    assert rate_loss(likelihoods["y"], num_pixels).item() == pytest.approx(72 / num_pixels, rel=1e-6)


def test_rate_and_rd_loss_match_compressai():
    from compressai.losses import RateDistortionLoss

    from proxiqa_lab.models import BMSHJ

    torch.manual_seed(0)
    x = torch.rand(2, 3, 64, 64)
    out = BMSHJ(N=8, M=8)(x)
    reference = RateDistortionLoss(lmbda=0.01)(out, x)
    rate = rate_loss(out["likelihoods"], 2 * 64 * 64)
    pixel = pixel_loss(x, out["x_hat"])
    assert rate.item() == pytest.approx(reference["bpp_loss"].item(), rel=1e-5)
    assert pixel.item() == pytest.approx(reference["mse_loss"].item(), rel=1e-5)
    # CompressAI's lmbda weighs MSE on the 0..255 scale.
    assert rd_loss(rate, pixel, 0.01 * MSE_SCALE_255).item() == pytest.approx(reference["loss"].item(), rel=1e-5)


def test_pixel_loss_mse_and_mae():
    x = torch.zeros(1, 1, 2, 2)
    x_hat = torch.tensor([0.1, -0.2, 0.3, 0.0]).reshape(1, 1, 2, 2)
    assert pixel_loss(x, x_hat, "mse").item() == pytest.approx((0.01 + 0.04 + 0.09) / 4)
    assert pixel_loss(x, x_hat, "mae").item() == pytest.approx(0.6 / 4)
    assert pixel_loss(x, x_hat).item() == pixel_loss(x, x_hat, "mse").item()


def test_rd_proxy_total_and_metric_losses_by_hand():
    rate, pixel, proxy = torch.tensor(0.5), torch.tensor(0.01), torch.tensor(20.0)
    assert rd_loss(rate, pixel, 100).item() == pytest.approx(100 * 0.01 + 0.5)
    assert proxy_loss(torch.tensor([90.0, 80.0]), 100).item() == pytest.approx(15.0)
    assert total_loss(rate, pixel, proxy, 2.0, 0.25).item() == pytest.approx(2 * (0.25 * 20 + 0.75 * 0.01) + 0.5)
    # alpha = 0 is eq. (8); alpha = 1 keeps only the proxy term.
    assert total_loss(rate, pixel, proxy, 2.0, 0).item() == pytest.approx(rd_loss(rate, pixel, 2.0).item())
    assert total_loss(rate, pixel, proxy, 2.0, 1).item() == pytest.approx(2 * 20 + 0.5)
    assert metric_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.0])).item() == pytest.approx(2.5)
    assert metric_loss(torch.tensor([1.0, 2.0]), np.array([1.0, 4.0])).item() == pytest.approx(2.0)


def test_losses_carry_gradients_to_the_right_inputs():
    m_hat = torch.tensor([90.0, 70.0], requires_grad=True)
    proxy_loss(m_hat, 100).backward()
    assert torch.allclose(m_hat.grad, torch.tensor([-0.5, -0.5]))
    m_hat.grad = None
    metric_loss(m_hat, [80.0, 80.0]).backward()
    assert torch.allclose(m_hat.grad, torch.tensor([10.0, -10.0]))  # d/dm mean((m - t)^2) = (m - t)


def test_ssim_losses():
    from proxiqa_lab.metrics.differentiable import ssim

    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32)
    x_hat = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    assert ssim_loss(x, x).item() == pytest.approx(0.0, abs=1e-5)
    value = ssim_loss(x, x_hat)
    assert value.item() == pytest.approx(1 - ssim(x, x_hat).mean().item(), rel=1e-6)
    assert 0 < value.item() < 1
    rate = torch.tensor(0.3)
    expected = 50 * (0.4 * value + 0.6 * pixel_loss(x, x_hat, "mae")) + rate
    assert ssim_ld_loss(x, x_hat, rate, 50, 0.4, d="mae").item() == pytest.approx(expected.item(), rel=1e-6)


@pytest.mark.parametrize("alpha", [1.5, -0.1, float("nan"), True, "0.5"])
def test_alpha_is_validated(alpha):
    t = torch.tensor(1.0)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got"):
        total_loss(t, t, t, 1.0, alpha)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got"):
        ssim_ld_loss(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), t, 1.0, alpha)


def test_alpha_message_names_the_value():
    t = torch.tensor(1.0)
    with pytest.raises(ValueError, match=r"^alpha must be in \[0, 1\], got 1.5$"):
        total_loss(t, t, t, 1.0, 1.5)


@pytest.mark.parametrize("lmbda", [0, -1.0, math.inf, math.nan, False, None])
def test_lmbda_is_validated(lmbda):
    t = torch.tensor(1.0)
    for call in (lambda: rd_loss(t, t, lmbda), lambda: total_loss(t, t, t, lmbda, 0.5)):
        with pytest.raises(ValueError, match=r"lmbda must be a finite number > 0, got"):
            call()


def test_other_arguments_are_validated():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match=r"d must be one of \('mse', 'mae'\), got 'l2'"):
        pixel_loss(x, x, d="l2")
    with pytest.raises(ValueError, match=r"same shape, got \(1, 3, 8, 8\) and \(1, 3, 8, 4\)"):
        pixel_loss(x, x[..., :4])
    with pytest.raises(ValueError, match="num_pixels must be a positive integer"):
        rate_loss(torch.full((1,), 0.5), 0)
    with pytest.raises(ValueError, match="likelihoods must be a tensor"):
        rate_loss({}, 64)
    with pytest.raises(ValueError, match="m_bar must be a finite number"):
        proxy_loss(torch.zeros(2), float("inf"))
    with pytest.raises(ValueError, match=r"m_hat and m must have the same shape, got \(2,\) and \(3,\)"):
        metric_loss(torch.zeros(2), torch.zeros(3))
