"""Tests of the proxy's training batch (probes, pristine pair), its warm-up, and the gradient diagnostics."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from proxiqa_lab.metrics import differentiable as D
from proxiqa_lab.models import ProxIQANet
from proxiqa_lab.training import train
from proxiqa_lab.training.config import TrainConfig, config_diff
from proxiqa_lab.training.proxy_batch import PROBE_RMS, gradient_diagnostics, probes, proxy_batch

FAST = dict(steps=4, checkpoint_every=2, log_every=1, progress=False, data="samples", device="cpu")
RECIPE = dict(proxy_probes=["grad", "sharpen", "blur", "noise"], proxy_pristine=0.5, proxy_steps=2, proxy_warmup=2)
COLUMNS = ["loss", "bpp", "mse", "proxy_loss", "metric_loss", "metric_true", "metric_proxy"]


def torch_psnr(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    mse = (x - x_hat).pow(2).flatten(1).mean(1).clamp_min(1e-10)
    return 10 * torch.log10(1 / mse)


class ExactVMAF(torch.nn.Module):
    """A 'proxy' that is the metric itself: its gradient is the exact one."""

    def forward(self, x, x_hat):
        return D.vmaf(x, x_hat, quantize=False)


@pytest.fixture
def batch():
    torch.manual_seed(0)
    x = torch.rand(6, 3, 32, 32) * 0.8 + 0.1
    return x, (x + 0.03 * torch.randn_like(x)).clamp(0, 1)


def test_probes_move_each_patch_by_a_bounded_rms(batch):
    x, x_hat = batch
    proxy = ProxIQANet(patch_size=32)
    copies = probes(x, x_hat, ["grad", "sharpen", "blur", "noise", "source", "contrast"], proxy)
    assert copies.shape == x_hat.shape and copies.min() >= 0 and copies.max() <= 1
    rms = (copies - x_hat).pow(2).mean(dim=(1, 2, 3)).sqrt()
    assert ((rms > 0) & (rms <= PROBE_RMS[1] + 1e-6)).all()


def test_grad_probe_raises_the_proxy_score(batch):
    x, x_hat = batch
    proxy = ProxIQANet(patch_size=32)
    with torch.no_grad():
        before = proxy(x, x_hat)
        after = proxy(x, probes(x, x_hat, ["grad"], proxy))
    assert (after > before).all()


def test_proxy_batch_keeps_the_reconstructions_first(batch):
    x, x_hat = batch
    xs, hats = proxy_batch(x, x_hat, ["noise"], pristine=1.0)
    n = x.shape[0]
    assert xs.shape[0] == hats.shape[0] == 2 * n + 1
    assert torch.equal(hats[:n], x_hat) and torch.equal(xs[:n], x)
    assert torch.equal(hats[-1], x[0]) and torch.equal(xs[-1], x[0])  # the pristine pair
    assert proxy_batch(x, x_hat)[1] is x_hat  # no recipe: the codec's pairs only


def test_gradient_diagnostics_of_an_exact_proxy(batch):
    x, x_hat = batch
    out = gradient_diagnostics(x, x_hat, ExactVMAF(), lambda a, b: D.vmaf(a, b, quantize=False))
    assert out["grad_cos_proxy"] == pytest.approx(1.0, abs=1e-5)
    assert out["grad_scale_proxy"] == pytest.approx(1.0, abs=1e-4)
    assert -1 <= out["grad_cos_mse"] <= 1
    untrained = gradient_diagnostics(x, x_hat, ProxIQANet(patch_size=32), D.vmaf)
    assert abs(untrained["grad_cos_proxy"]) < 0.5


def test_logged_metric_is_of_the_codecs_pairs_only(tmp_path):
    """The pristine pair (PSNR capped at 100 dB) is trained on but not logged as the codec's score."""
    kw = dict(objective=torch_psnr, m_bar=60.0, **FAST)
    run = train("smoke", out=tmp_path / "run", proxy_pristine=1.0, **kw)
    assert (run.log["metric_true"] < 60).all()


def test_recipe_resumes_exactly(tmp_path):
    kw = dict(objective=torch_psnr, m_bar=60.0, **{**FAST, "steps": 6}, **RECIPE)
    straight = train("smoke", out=tmp_path / "straight", **kw).log
    train("smoke", out=tmp_path / "split", **{**kw, "steps": 3})
    resumed = train("smoke", out=tmp_path / "split", **kw).log
    pd.testing.assert_frame_equal(straight[COLUMNS], resumed[COLUMNS], check_exact=True)
    plain = train("smoke", out=tmp_path / "plain", objective=torch_psnr, m_bar=60.0, **{**FAST, "steps": 6}).log
    assert not straight["metric_loss"].equals(plain["metric_loss"])  # the recipe changes the proxy's training


def test_diagnostics_are_logged_every_k_steps(tmp_path):
    run = train("smoke", out=tmp_path / "run", objective="proxy:vmaf", diagnose_every=2, **FAST)
    log = run.log.set_index("step")
    assert log.loc[[2, 4], ["grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy"]].notna().all().all()
    assert log.loc[[1, 3], "grad_cos_proxy"].isna().all()
    assert log["grad_cos_proxy"].dropna().between(-1, 1).all()


def test_proxy_init_starts_the_alternating_proxy(tmp_path):
    first = train("smoke", out=tmp_path / "first", objective="proxy:vmaf", **FAST)
    second = train("smoke", out=tmp_path / "second", objective="proxy:vmaf", proxy_init=str(first.proxy_path),
                   proxy_warmup=1, **FAST)
    notes = " ".join(second.metadata["notes"])
    assert "alternating proxy started from" in notes and "warmed up for 1 steps" in notes
    with pytest.raises(ValueError, match="trained on 'vmaf', not 'ssim'"):
        train("smoke", out=tmp_path / "third", objective="proxy:ssim", proxy_init=str(first.proxy_path), **FAST)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        ({"objective": "mse", "proxy_probes": ["noise"]}, "only 'proxy:*' objectives"),
        ({"objective": "pretrained-proxy:vmaf", "proxy_warmup": 10}, "only 'proxy:*' objectives"),
        ({"objective": "proxy:vmaf", "proxy_probes": ["wobble"]}, "unknown proxy probe"),
        ({"objective": "proxy:vmaf", "proxy_probes": "grad"}, "must be a list"),
        ({"objective": "proxy:vmaf", "proxy_pristine": 1.5}, "probability in [0, 1]"),
        ({"objective": "proxy:vmaf", "proxy_steps": 0}, "proxy_steps must be >= 1"),
        ({"objective": "proxy:ms_ssim", "diagnose_every": 10}, "exact gradient"),
        ({"objective": "mse", "proxy_abs": True}, "proxy_abs"),
        ({"objective": "proxy:vmaf", "proxy_slope_weight": 1.0}, "set proxy_probes too"),
        ({"objective": "proxy:vmaf", "proxy_slope_weight": -1.0, "proxy_probes": ["noise"]}, ">= 0"),
    ],
)
def test_recipe_options_are_checked_before_any_work(tmp_path, overrides, needle):
    with pytest.raises(ValueError) as err:
        train("smoke", out=tmp_path / "run", **{**FAST, **overrides})
    assert needle in str(err.value)
    assert not (tmp_path / "run").exists()


def test_a_run_stored_before_the_recipe_fields_resumes():
    stored = {k: v for k, v in TrainConfig().to_dict().items() if not k.startswith(("proxy_", "diagnose"))}
    assert config_diff(stored, TrainConfig().to_dict()) == []
    assert config_diff(stored, TrainConfig(proxy_steps=2).to_dict()) == ["proxy_steps"]


def test_slope_loss_compares_changes_not_levels():
    from proxiqa_lab.losses import slope_loss

    m, m_probe = torch.tensor([50.0, 70.0]), torch.tensor([53.0, 69.0])
    # a proxy off by a constant has the right slopes: no slope loss
    assert float(slope_loss(m + 10, m_probe + 10, m, m_probe)) == 0.0
    # a proxy that does not move between a reconstruction and its probe misses the change
    assert float(slope_loss(m, m, m, m_probe)) == pytest.approx((9 + 1) / 2)
    with pytest.raises(ValueError, match="one shape"):
        slope_loss(m, m[:1], m, m_probe)


def test_slope_weight_changes_the_proxy_step(tmp_path):
    kw = dict(objective=torch_psnr, m_bar=60.0, proxy_probes=["noise", "blur"], **{**FAST, "steps": 3})
    plain = train("smoke", out=tmp_path / "plain", **kw).log
    sloped = train("smoke", out=tmp_path / "sloped", proxy_slope_weight=10.0, **kw).log
    assert plain["loss"][0] == sloped["loss"][0]  # the same first codec step
    assert not plain["metric_loss"].equals(sloped["metric_loss"])
