"""TensorBoard events of a training run, beside ``log.csv``: ``<run>/tensorboard/``.

Every logged row becomes scalars (the loss terms, rate, distortion, true and proxy metric,
learning rate and the proxy-gradient diagnostics), and every checkpoint adds the first two
patches of the last logged batch and their reconstructions. A resumed run drops events past
its checkpoint (``purge_step``), so the curves have no doubled segments::

    .venv/bin/tensorboard --logdir runs/

The events are a view of ``log.csv``, so they are written on a best-effort basis: when writing them
fails (a full disk, a network drive gone), they stop with one warning and training goes on; a disk
that stays full then stops training at its next ``log.csv`` row or checkpoint, with a one-line
error saying where the run resumes. TensorBoard writes from a thread of its own; its failure is
reported once, from the training loop, not as a thread traceback.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
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


class TensorBoardWarning(UserWarning):
    """Writing the TensorBoard events failed; they stopped, and training went on."""


class Board:
    """A run's TensorBoard writer.

    Args:
        folder: where the event files go (``<run>/tensorboard``).
        first_step: the first step this process will log; events at and past it from an earlier
            process are dropped.
    """

    def __init__(self, folder: str | Path, first_step: int):
        from torch.utils.tensorboard import SummaryWriter

        _quiet_writer_threads()
        self.folder = Path(folder)
        self.writer = SummaryWriter(str(folder), purge_step=first_step)
        self._step = first_step

    def scalars(self, row: dict) -> None:
        self._step = step = int(row["step"])
        for column, tag in TAGS.items():
            value = row.get(column)
            if isinstance(value, (int, float)) and math.isfinite(value):
                self._call("add_scalar", tag, value, step)

    def images(self, step: int, x: torch.Tensor, x_hat: torch.Tensor) -> None:
        """Sources above, reconstructions below, one column per patch."""
        self._step = step
        grid = torch.cat([torch.cat(list(x), dim=2), torch.cat(list(x_hat.clamp(0, 1)), dim=2)], dim=1)
        self._call("add_image", "reconstructions (top: source)", grid, step)

    def close(self) -> None:
        self._call("flush")
        self._call("close")

    def _call(self, method: str, *args) -> None:
        """``self.writer.<method>(*args)``; on a failed write, stop the events with one warning."""
        if self.writer is None:
            return
        try:
            getattr(self.writer, method)(*args)
        except OSError as err:
            writer, self.writer = self.writer, None
            warnings.warn(f"TensorBoard events stopped at step {self._step}: {err.strerror or err} "
                          f"({err.filename or self.folder}); training goes on, log.csv keeps every row",
                          TensorBoardWarning, stacklevel=4)
            with contextlib.suppress(OSError):
                writer.close()


def _quiet_writer_threads() -> None:
    """Keep an ``OSError`` in TensorBoard's writer thread from printing a thread traceback.

    The thread keeps the error, and the next call from the training loop raises it, where
    :meth:`Board._call` turns it into one warning. Other errors, and other threads, keep the
    hook they had.
    """
    from tensorboard.summary.writer import event_file_writer

    worker = getattr(event_file_writer, "_AsyncWriterThread", None)
    previous = threading.excepthook
    if worker is None or getattr(previous, "_quiet_tensorboard", False):
        return

    def hook(args) -> None:
        if not (isinstance(args.thread, worker) and isinstance(args.exc_value, OSError)):
            previous(args)

    hook._quiet_tensorboard = True
    threading.excepthook = hook
