"""Training run folders: what they hold, how to open one, and the rules for starting or resuming one.

A run folder holds ``config.json``, ``run.json`` (metadata), ``log.csv``, ``tensorboard/``,
``checkpoints/last.pt`` (and ``step_<K>.pt``), and at the end ``model.pt`` and ``proxy.pt``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from proxiqa_lab.fileio import atomic_write_text
from proxiqa_lab.training.checkpointing import load_state
from proxiqa_lab.training.config import TrainConfig, config_diff

__all__ = ["LOG_COLUMNS", "Run", "default_out", "is_complete", "load_run", "prepare_out"]

#: Columns of ``log.csv``. ``metric_*`` are batch means and standard deviations (Fig. 7 bands);
#: ``mse`` is on the [0, 1] scale; ``psnr`` is the batch's RGB PSNR with x̂ clamped to [0, 1];
#: ``grad_*`` are the proxy-gradient diagnostics (``proxy_batch.gradient_diagnostics``), on the
#: rows of ``diagnose_every``.
LOG_COLUMNS = (
    "step", "loss", "bpp", "mse", "psnr", "proxy_loss", "metric_loss",
    "metric_true", "metric_true_std", "metric_proxy", "metric_proxy_std", "aux_loss", "lr", "seconds",
    "grad_cos_proxy", "grad_cos_mse", "grad_scale_proxy",
)


@dataclass
class Run:
    """A training run folder.

    Attributes:
        out: the run folder.
        config: its :class:`TrainConfig`.
    """

    out: Path
    config: TrainConfig

    @property
    def log(self):
        """``log.csv`` as a pandas DataFrame."""
        import pandas as pd

        path = self.out / "log.csv"
        return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=list(LOG_COLUMNS))

    @property
    def model_path(self) -> Path | None:
        """``model.pt`` (the codec after ``update()``), once the run is complete."""
        path = self.out / "model.pt"
        return path if path.is_file() else None

    @property
    def proxy_path(self) -> Path | None:
        path = self.out / "proxy.pt"
        return path if path.is_file() else None

    @property
    def metadata(self) -> dict:
        path = self.out / "run.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    @property
    def train_seconds(self) -> float:
        """Wall time of the training steps, summed over resumes: ``run.json`` of a complete run,
        else ``checkpoints/last.pt``; NaN when neither records it (runs from older versions)."""
        meta = self.metadata
        if meta.get("status") == "complete" and "train_seconds" in meta:
            return float(meta["train_seconds"])
        path = self.out / "checkpoints" / "last.pt"
        return float(load_state(path).get("elapsed", math.nan)) if path.is_file() else math.nan

    @property
    def step(self) -> int:
        """Step of ``checkpoints/last.pt`` (0 if none)."""
        path = self.out / "checkpoints" / "last.pt"
        return int(load_state(path)["step"]) if path.is_file() else 0


def load_run(out: str | os.PathLike) -> Run:
    """Open a run folder written by :func:`train`."""
    out = Path(out)
    path = out / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{str(out)!r} is not a training run folder (no config.json)")
    return Run(out, TrainConfig.from_dict(json.loads(path.read_text())))


def is_complete(out: str | os.PathLike, steps: int = 0) -> bool:
    """Whether ``out`` is a finished run folder (``model.pt``, and ``run.json`` saying "complete") of at least
    ``steps`` steps. A folder that is missing, partial or has an unreadable ``run.json`` is not."""
    out = Path(out)
    try:
        info = json.loads((out / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return ((out / "model.pt").is_file() and isinstance(info, dict) and info.get("status") == "complete"
            and int(info.get("step", 0)) >= steps)


def _started(out: Path) -> bool:
    """Whether ``out`` holds anything a run trained: a checkpoint, a model, or logged steps."""
    if (out / "model.pt").is_file() or any((out / "checkpoints").glob("*.pt")):
        return True
    log = out / "log.csv"
    return log.is_file() and len(log.read_text().splitlines()) > 1


def prepare_out(out: Path, config: TrainConfig, resume: bool) -> None:
    """Check ``out`` against ``config`` (resume) or make sure it is new/empty; write ``config.json``.

    A folder whose run never trained a step (only a ``config.json``, perhaps half-written, and
    stray ``*.tmp`` files of a killed write) holds nothing to keep: a new command takes it over.
    """
    stored_path = out / "config.json"
    held = {".lock", "log.csv", "config.json"}  # the run lock; a log may precede the first checkpoint
    started = out.is_dir() and _started(out)
    others = [p for p in out.iterdir() if p.name not in held and p.suffix != ".tmp"] if out.is_dir() else []
    if not resume and started:
        raise ValueError(f"--out {str(out)!r} is not empty: it holds a run that has trained; a new run needs an empty or new folder "
                         f"(nothing is deleted: pick another --out, or remove the old run yourself)")
    if stored_path.is_file() and started:
        try:
            stored = json.loads(stored_path.read_text())
        except ValueError as err:
            raise ValueError(f"{str(stored_path)!r} is unreadable ({err}) although the run has checkpoints; "
                             f"train into a new --out folder") from None
        diff = config_diff(stored, config.to_dict())
        if diff:
            details = "; ".join(f"{k}: stored {stored.get(k)!r}, given {getattr(config, k, None)!r}" for k in diff)
            raise ValueError(f"{str(out)!r} holds a run with another configuration ({details}). Resume it with the "
                             f"same settings, or train into a new --out folder")
    elif others and not stored_path.is_file():
        raise ValueError(f"--out {str(out)!r} is not empty and holds no training run (no config.json); "
                         f"pick a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored_path, json.dumps(config.to_dict(), indent=2))


def default_out(config: TrainConfig) -> Path:
    from proxiqa_lab.paths import runs_root

    name = f"{config.profile}-{config.architecture}{config.N}-{config.objective}-lmbda{config.lmbda:g}"
    return runs_root() / name.replace(":", "_").replace("+", "_")
