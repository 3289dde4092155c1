"""TensorBoard events of a training run, beside ``log.csv``: ``<run>/tensorboard/``.

Every logged row becomes scalars (the loss terms, rate, distortion, true and proxy metric,
learning rate and the proxy-gradient diagnostics), and every checkpoint adds the first two
patches of the last logged batch and their reconstructions. A resumed run drops events past
its checkpoint (``purge_step``), so the curves have no doubled segments::

    .venv/bin/tensorboard --logdir runs/
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

#: ``log.csv`` column -> TensorBoard tag.
TAGS = {
    "loss": "loss/total",
    "bpp": "rate/bpp",
    "mse": "distortion/mse",
    "psnr": "distortion/psnr_rgb_db",
    "proxy_loss": "loss/metric_term",
    "metric_loss": "loss/proxy_regression",
    "aux_loss": "loss/aux",
    "metric_true": "metric/true",
    "metric_proxy": "metric/proxy",
    "lr": "optim/lr",
    "grad_cos_proxy": "gradient/cos_proxy_exact",
    "grad_cos_mse": "gradient/cos_mse_exact",
    "grad_scale_proxy": "gradient/norm_proxy_over_exact",
}


class Board:
    """A run's TensorBoard writer.

    Args:
        folder: where the event files go (``<run>/tensorboard``).
        first_step: the first step this process will log; events at and past it from an earlier
            process are dropped.
    """

    def __init__(self, folder: str | Path, first_step: int):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(folder), purge_step=first_step)

    def scalars(self, row: dict) -> None:
        step = int(row["step"])
        for column, tag in TAGS.items():
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(tag, value, step)

    def images(self, step: int, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Sources above, reconstructions below, one column per patch."""
        grid = torch.cat([torch.cat(list(x), dim=2), torch.cat(list(x_hat.clamp(0, 1)), dim=2)], dim=1)
        self.writer.add_image("reconstructions (top: source)", grid, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
