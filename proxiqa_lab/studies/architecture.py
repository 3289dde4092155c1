"""The parts of Figs. 1-4 on a real batch: shapes, parameter counts, the losses of eqs. (6)-(11),
and one alternating update of Fig. 3 traced step by step (using the trainer's own steps)."""

from __future__ import annotations

import tempfile

import pandas as pd
import torch


def parameter_count(model: torch.nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@torch.no_grad()
def layer_shapes(model: torch.nn.Module, *inputs: torch.Tensor) -> pd.DataFrame:
    """Output shape and parameter count of every leaf module for one forward pass."""
    rows, hooks = [], []
    for name, module in model.named_modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: rows.append({
                    "layer": name, "type": type(m).__name__,
                    "output": tuple(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__,
                    "parameters": sum(p.numel() for p in m.parameters(recurse=False))})))
    try:
        model.eval()
        model(*inputs)
    finally:
        for h in hooks:
            h.remove()
    return pd.DataFrame(rows)


def model_summary(models: dict[str, torch.nn.Module]) -> pd.DataFrame:
    """Parameter counts of several models (e.g. the proxy and the codec at two widths)."""
    return pd.DataFrame([{"model": k, "class": type(m).__name__, "parameters": parameter_count(m)}
                         for k, m in models.items()])


class AlternatingTrace:
    """One iteration of Fig. 3 on one batch, using :class:`proxiqa_lab.training.Trainer`'s own steps.

    Args:
        profile: training profile giving the codec width and patch size.
        metric: the true metric ``M`` (``proxy:<metric>`` objective).
        lmbda, alpha: eq. (10).
        seed: seeds the models and the batch.
        data_root: where the training images are (``None``: default; scikit-image photos when absent).
    """

    def __init__(self, profile: str = "smoke", metric: str = "vmaf", lmbda: float = 0.013, alpha: float = 0.5,
                 seed: int = 0, data_root: str | None = None, device: str = "auto") -> None:
        from pathlib import Path

        from proxiqa_lab.training import Trainer, make_config

        self.config = make_config(profile, objective=f"proxy:{metric}", lmbda=lmbda, alpha=alpha, seed=seed,
                                  data_root=data_root, device=device, progress=False)
        self._tmp = tempfile.TemporaryDirectory(prefix="proxiqa-trace-")
        self.trainer = Trainer(self.config, Path(self._tmp.name))
        self.trainer.build()
        self.x = next(self.trainer.loader).to(self.trainer.device)

    @property
    def codec(self) -> torch.nn.Module:
        return self.trainer.codec

    @property
    def proxy(self) -> torch.nn.Module:
        return self.trainer.proxy

    def loss_terms(self) -> pd.DataFrame:
        """Eqs. (6)-(11) evaluated on the batch with the current codec and proxy (no update)."""
        from proxiqa_lab import losses

        cfg, obj = self.config, self.trainer.objective
        with torch.no_grad():
            out = self.codec(self.x)
            x_hat = out["x_hat"].clamp(0, 1)
            n, _, h, w = self.x.shape
            rate = losses.rate_loss(out["likelihoods"], n * h * w)
            pixel = losses.pixel_loss(self.x, x_hat)
            m_hat = self.proxy(self.x, x_hat)
            proxy = losses.proxy_loss(m_hat, obj.m_bar)
            lmbda = cfg.lmbda * losses.MSE_SCALE_255
            m = obj.true_metric(self.x, x_hat).to(m_hat.dtype)
            scale = self.trainer.metric_scale
            rows = [
                ("(6)", "rate L_r (bpp)", rate),
                ("(7)", "pixel L_d (MSE, [0,1] scale)", pixel),
                ("(8)", "RD loss λ·255²·L_d + L_r", losses.rd_loss(rate, pixel, lmbda)),
                ("(9)", f"proxy L_p = M̄ − M̂ (M̄ = {obj.m_bar:g})", proxy),
                ("(10)", f"total λ[α·s·L_p + (1−α)·255²·L_d] + L_r (α = {cfg.alpha:g}, s = {scale:g})",
                 cfg.lmbda * (cfg.alpha * scale * proxy + (1 - cfg.alpha) * losses.MSE_SCALE_255 * pixel) + rate),
                ("(11)", "metric L_m = ‖M̂ − M‖² (proxy step)", losses.metric_loss(m_hat, m)),
            ]
        return pd.DataFrame([{"equation": e, "term": t, "value": float(v)} for e, t, v in rows])

    def step(self) -> dict[str, pd.DataFrame | dict]:
        """Codec step (eq. 10, proxy frozen), true metric M, then proxy step (eq. 11).

        Returns:
            ``{"codec": the codec step's logged values, "patches": per-patch table with the
            true M, M̂ before and after the proxy step}``.
        """
        values, x_hat = self.trainer.codec_step(self.x, step=1)[:2]  # (values, x̂, M̂, ...)
        x_hat = x_hat.clamp(0, 1)
        m = self.trainer.objective.true_metric(self.x, x_hat)
        with torch.no_grad():
            before = self.proxy(self.x, x_hat).double().cpu()
        metric_loss = self.trainer.proxy_step(self.x, x_hat, m)
        with torch.no_grad():
            after = self.proxy(self.x, x_hat).double().cpu()
        patches = pd.DataFrame({"true M": m.numpy(), "M̂ before proxy step": before.numpy(),
                                "M̂ after proxy step": after.numpy()})
        patches.index.name = "patch"
        return {"codec": {**values, "metric_loss": metric_loss}, "patches": patches}
